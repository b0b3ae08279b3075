import DNS
import RelayCore
import Synchronization

/// One shard of the answer cache (`SharedAnswerCache` holds them, each behind its own lock):
/// fixed capacity, every byte allocated once, no allocation on a hit. Single-threaded itself.
///
/// Key: the question name (without case), type, class, the DO and CD bits, and a `CacheKey`: the
/// server the answer came from (in `original` mode the server the client asked, since two servers
/// may answer differently) and the clients it may go to (`upstream.client_identity`). Value: the upstream's answer bytes with, per record, where its TTL sits and its
/// TTL at store time (clamped to `min_ttl`...`max_ttl`). A hit copies the answer, puts in the
/// client's ID and question bytes (its 0x20 case), and writes every TTL minus the entry's age.
/// Negative answers (NXDOMAIN, NODATA) are kept for the SOA's minimum (RFC 2308), capped by
/// `negative_ttl`; without an SOA they are not kept. Expired entries stay `serve_stale` longer and
/// are only given out when the upstream fails (RFC 8767, TTL 30). Eviction is CLOCK: a hit sets
/// a bit, the hand clears it once before the entry can go.
public final class AnswerCache {
    public struct Settings: Equatable, Sendable {
        public var entries = 10_000
        public var minTTL: UInt32 = 0
        public var maxTTL: UInt32 = 86_400
        public var negativeTTL: UInt32 = 3_600
        public var serveStaleSeconds: UInt32 = 86_400
        public var prefetch = true

        public init(entries: Int = 10_000, minTTL: UInt32 = 0, maxTTL: UInt32 = 86_400, negativeTTL: UInt32 = 3_600,
                    serveStaleSeconds: UInt32 = 86_400, prefetch: Bool = true) {
            self.entries = entries
            self.minTTL = minTTL
            self.maxTTL = maxTTL
            self.negativeTTL = negativeTTL
            self.serveStaleSeconds = serveStaleSeconds
            self.prefetch = prefetch
        }
    }

    /// Largest answer kept (bigger ones are forwarded each time; counted).
    static let slotSize = 1_232
    /// Records per answer whose TTLs are tracked; answers with more are not kept.
    static let maxRecords = 24
    /// Per record: where its TTL sits in the answer (2 bytes) and its TTL when stored (4).
    static let ttlEntrySize = 6
    /// An entry's bytes: the answer, then its records' TTL entries right after it, so that a
    /// hit reads one run of cache lines (they were two arrays of their own: two more misses).
    /// Rounded up to whole cache lines, so that a slot's first two lines hold a short answer
    /// (what `CachePrefetch` warms).
    static let slotStride = (slotSize + maxRecords * ttlEntrySize + 63) & ~63
    static let staleTTL: UInt32 = 30

    struct Entry {
        var inUse = false
        var referenced = false
        var prefetching = false
        /// The whole key's hash (`Hash.full`), and the bucket its question's hash chose.
        var hash: UInt64 = 0
        var bucket: Int32 = 0
        var nextInBucket: Int32 = -1
        var length: UInt16 = 0
        var questionEnd: UInt16 = 0
        var flags: UInt8 = 0
        var recordCount: UInt8 = 0
        var key = CacheKey(server: Endpoint(address: .anyV4, port: 0))
        /// Seconds (worker clock) when stored, and the shortest TTL then.
        var storedAt: UInt32 = 0
        var ttl: UInt32 = 0
        var hits: UInt32 = 0
    }

    enum Lookup {
        case miss
        /// An answer of `length` bytes is in the output buffer; `prefetch` asks the caller to
        /// refresh the entry upstream now (it is popular and about to expire).
        case hit(length: Int, prefetch: Bool)
    }

    let settings: Settings
    /// Where the tables are: fixed from init to deinit, so that `CachePrefetch` may warm them
    /// without the shard's lock (it reads only bucket heads, atomically, and prefetches the rest).
    let storage: Storage
    private var entries: UnsafeMutablePointer<Entry> { storage.entries }
    private var buckets: UnsafeMutablePointer<Atomic<Int32>> { storage.buckets }
    private var bucketMask: Int { storage.bucketMask }
    private let capacity: Int
    /// Mixed into every hash (`SharedAnswerCache` gives its shards one, random per process): the
    /// chains' lengths do not follow from names a client chose.
    let seed: UInt64
    private var hand = 0
    /// Where `insert` collects TTLs before it knows the answer is worth keeping.
    private var scratchOffsets = [UInt16](repeating: 0, count: AnswerCache.maxRecords)
    private var scratchTTLs = [UInt32](repeating: 0, count: AnswerCache.maxRecords)
    private(set) var count = 0

    // Counters, read by the worker when it publishes.
    var hits = 0
    var misses = 0
    var inserted = 0
    var evicted = 0
    var staleServed = 0
    var tooLarge = 0

    /// A shard's tables. The bucket heads are atomics (relaxed: plain loads and stores on the
    /// machine) because `CachePrefetch` reads them while the owner of the lock may write them;
    /// what it reads is only a guess of which entry to warm.
    struct Storage: @unchecked Sendable {
        let buckets: UnsafeMutablePointer<Atomic<Int32>>
        let bucketMask: Int
        let entries: UnsafeMutablePointer<Entry>
        let answers: UnsafeMutableRawPointer
    }

    init(settings: Settings, seed: UInt64 = 0) {
        self.settings = settings
        self.seed = seed
        capacity = max(1, settings.entries)
        let entries = UnsafeMutablePointer<Entry>.allocate(capacity: capacity)
        entries.initialize(repeating: Entry(), count: capacity)
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        let buckets = UnsafeMutablePointer<Atomic<Int32>>.allocate(capacity: size)
        for i in 0..<size { (buckets + i).initialize(to: Atomic(-1)) }
        storage = Storage(buckets: buckets, bucketMask: size - 1, entries: entries,
                          answers: .allocate(byteCount: capacity * Self.slotStride, alignment: 64))
    }

    deinit {
        storage.buckets.deinitialize(count: storage.bucketMask + 1)
        storage.buckets.deallocate()
        storage.entries.deinitialize(count: capacity)
        storage.entries.deallocate()
        storage.answers.deallocate()
    }

    var isEnabled: Bool { settings.entries > 0 }

    // MARK: Keys

    /// A key's two hashes: `question`, of the question alone (name without case, type, class),
    /// picks the shard (top bits) and the bucket (low bits), so that `CachePrefetch` can find
    /// both from a query's bytes before it is parsed; `full` adds the flags and the `CacheKey`
    /// and is what an entry is compared by first. A question asked of several servers, or with
    /// and without DO, therefore shares a bucket: a few entries on one chain.
    struct Hash {
        let question: UInt64
        let full: UInt64
    }

    /// The hash of the question in `message` (header first; the question ends at `end`), eight
    /// bytes at a time with ASCII letters folded to lower case in the word. Type and class bytes
    /// are folded too (a hash only: `Question.matches` compares them exactly).
    @inline(__always)
    static func questionHash(_ message: UnsafeRawBufferPointer, end: Int, seed: UInt64) -> UInt64 {
        // `end` comes from `Question.end` or a parse of this message: within it, past the header.
        assert(end > DNSHeader.size && end <= message.count)
        let p = message.baseAddress!
        var h = seed ^ 0x9e37_79b9_7f4a_7c15 ^ UInt64(truncatingIfNeeded: end)
        var i = DNSHeader.size
        while i + 8 <= end {
            h = (h ^ ASCIICase.lowercased(word: p.loadUnaligned(fromByteOffset: i, as: UInt64.self))) &* 0xff51_afd7_ed55_8ccd
            h ^= h >> 32
            i += 8
        }
        if i < end {
            // The last 1–7 bytes: the final eight bytes of the question when there are eight
            // (some hashed twice), else byte by byte.
            var w: UInt64 = 0
            if end - DNSHeader.size >= 8 {
                w = p.loadUnaligned(fromByteOffset: end - 8, as: UInt64.self)
            } else {
                for k in i..<end { w = w << 8 | UInt64(p.load(fromByteOffset: k, as: UInt8.self)) }
            }
            h = (h ^ ASCIICase.lowercased(word: w)) &* 0xff51_afd7_ed55_8ccd
        }
        h ^= h >> 33
        h = h &* 0xc4ce_b9fe_1a85_ec53
        return h ^ (h >> 29)
    }

    /// Both hashes of a key: the question's, then the flags, server and clients mixed in.
    @inline(__always)
    static func hash(question message: UnsafeRawBufferPointer, end: Int, flags: UInt8, key: CacheKey, seed: UInt64) -> Hash {
        let question = questionHash(message, end: end, seed: seed)
        var h = (question ^ UInt64(flags) ^ UInt64(key.server.port) << 8) &* 0xff51_afd7_ed55_8ccd
        h = mix(h, key.server.address)
        if !key.isShared {
            h = (h ^ UInt64(key.clients.length)) &* 0xff51_afd7_ed55_8ccd
            h = mix(h, key.clients.address)
        }
        return Hash(question: question, full: h ^ (h >> 31))
    }

    @inline(__always)
    private static func mix(_ h: UInt64, _ address: IPAddress) -> UInt64 {
        switch address {
        case .v4(let a): return (h ^ UInt64(a.rawValue)) &* 0xff51_afd7_ed55_8ccd
        case .v6(let a): return ((h ^ a.high) &* 0xff51_afd7_ed55_8ccd ^ a.low) &* 0xc4ce_b9fe_1a85_ec53
        }
    }

    @inline(__always)
    private func hash(_ message: UnsafeRawBufferPointer, end: Int, flags: UInt8, key: CacheKey) -> Hash {
        Self.hash(question: message, end: end, flags: flags, key: key, seed: seed)
    }

    @inline(__always)
    private func slot(_ index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: storage.answers + index * Self.slotStride, count: Self.slotStride)
    }

    @inline(__always)
    private func find(_ query: UnsafeRawBufferPointer, end: Int, flags: UInt8, key: CacheKey, hash: Hash) -> Int? {
        var index = buckets[Int(truncatingIfNeeded: hash.question) & bucketMask].load(ordering: .relaxed)
        while index >= 0 {
            let e = entries + Int(index)
            if e.pointee.hash == hash.full && Int(e.pointee.questionEnd) == end && e.pointee.flags == flags && e.pointee.key == key
                && Question.matches(query: query, end: end, response: UnsafeRawBufferPointer(slot(Int(index)))) {
                return Int(index)
            }
            index = e.pointee.nextInBucket
        }
        return nil
    }

    // MARK: Lookups

    /// A fresh answer for the query in `query` (its question ends at `end`), written to `out`
    /// with the client's ID and question bytes and counted-down TTLs; `.miss` when there is none
    /// (an expired entry is a miss here; `stale` hands it out when the upstream fails).
    @inline(__always)
    func lookup(_ query: UnsafeRawBufferPointer, end: Int, flags: UInt8, key: CacheKey, now: UInt32,
                into out: UnsafeMutableRawBufferPointer, hash: Hash? = nil) -> Lookup {
        let h = hash ?? self.hash(query, end: end, flags: flags, key: key)
        guard let index = find(query, end: end, flags: flags, key: key, hash: h) else {
            misses += 1
            return .miss
        }
        let age = now &- entries[index].storedAt
        guard age < entries[index].ttl, Int(entries[index].length) <= out.count else {
            misses += 1
            return .miss
        }
        hits += 1
        entries[index].referenced = true
        entries[index].hits &+= 1
        let length = copyOut(index, query: query, end: end, into: out) { $0 - age }
        // Refresh popular entries in their last tenth (at least 2 s before they expire).
        var prefetch = false
        if settings.prefetch && !entries[index].prefetching && entries[index].hits >= 3 && entries[index].ttl >= 10 {
            let left = entries[index].ttl - age
            if left <= max(2, entries[index].ttl / 10) {
                entries[index].prefetching = true
                prefetch = true
            }
        }
        return .hit(length: length, prefetch: prefetch)
    }

    /// An expired answer still inside the `serve_stale` window, with every TTL at 30 s (RFC
    /// 8767); nil when there is none. For queries the upstream failed to answer.
    func stale(_ query: UnsafeRawBufferPointer, end: Int, flags: UInt8, key: CacheKey, now: UInt32,
               into out: UnsafeMutableRawBufferPointer, hash: Hash? = nil) -> Int? {
        let h = hash ?? self.hash(query, end: end, flags: flags, key: key)
        guard let index = find(query, end: end, flags: flags, key: key, hash: h),
              Int(entries[index].length) <= out.count,
              now &- entries[index].storedAt < entries[index].ttl &+ settings.serveStaleSeconds else { return nil }
        staleServed += 1
        return copyOut(index, query: query, end: end, into: out) { _ in Self.staleTTL }
    }

    @inline(__always)
    private func copyOut(_ index: Int, query: UnsafeRawBufferPointer, end: Int, into out: UnsafeMutableRawBufferPointer,
                         ttl: (UInt32) -> UInt32) -> Int {
        let length = Int(entries[index].length)
        let base = out.baseAddress!
        let stored = slot(index).baseAddress!
        base.copyMemory(from: stored, byteCount: length)
        // The client's ID and question bytes (its letter case).
        base.copyMemory(from: query.baseAddress!, byteCount: 2)
        (base + DNSHeader.size).copyMemory(from: query.baseAddress! + DNSHeader.size, byteCount: end - DNSHeader.size)
        var entry = stored + length
        for _ in 0..<Int(entries[index].recordCount) {
            let offset = entry.loadUnaligned(as: UInt16.self)
            RecordWalker.setU32(out, Int(offset), ttl(entry.loadUnaligned(fromByteOffset: 2, as: UInt32.self)))
            entry += Self.ttlEntrySize
        }
        return length
    }

    // MARK: Storing

    /// Keeps an upstream answer for its question (the answer's own, ending at `end`). Only
    /// NOERROR and NXDOMAIN answers that are not truncated, fit a slot and parse are kept.
    func insert(_ answer: UnsafeRawBufferPointer, end: Int, flags: UInt8, key: CacheKey, now: UInt32, hash: Hash? = nil) {
        guard isEnabled, let p = answer.baseAddress, answer.count >= end, end > DNSHeader.size else { return }
        let headerFlags = DNSHeader.flags(p)
        let rcode = headerFlags & DNSHeader.rcodeMask
        guard headerFlags & DNSHeader.truncatedFlag == 0, rcode == 0 || rcode == 3 else { return }
        guard answer.count <= Self.slotSize else {
            tooLarge += 1
            return
        }
        // TTLs: every record but OPT; negative answers live as long as their SOA says.
        var offsets: (count: Int, ok: Bool) = (0, true)
        var shortest = UInt32.max
        var soaTTL: UInt32?
        let positive = rcode == 0 && DNSHeader.answerCount(p) > 0
        let parsed = RecordWalker.walk(answer, questionEnd: end) { record in
            guard record.type != 41 else { return }  // OPT: its "TTL" is flags
            guard offsets.count < Self.maxRecords else { offsets.ok = false; return }
            var ttl = RecordWalker.u32(answer, record.ttlOffset)
            if record.type == 6 && record.section == 1 && record.dataLength >= 20 {
                // RFC 2308 §5: a negative answer lives min(SOA TTL, SOA MINIMUM).
                soaTTL = min(ttl, RecordWalker.u32(answer, record.dataOffset + record.dataLength - 4))
            }
            ttl = min(max(ttl, settings.minTTL), settings.maxTTL)
            scratchOffsets[offsets.count] = UInt16(record.ttlOffset)
            scratchTTLs[offsets.count] = ttl
            shortest = min(shortest, ttl)
            offsets.count += 1
        }
        guard parsed, offsets.ok else { return }
        let lifetime: UInt32
        if positive {
            lifetime = shortest
        } else {
            guard let soaTTL else { return }  // no SOA: nothing says how long "no" holds
            lifetime = min(soaTTL, settings.negativeTTL)
            for i in 0..<offsets.count { scratchTTLs[i] = min(scratchTTLs[i], lifetime) }
        }
        guard lifetime > 0 else { return }

        let h = hash ?? self.hash(answer, end: end, flags: flags, key: key)
        let index = find(answer, end: end, flags: flags, key: key, hash: h) ?? freeEntry()
        if !entries[index].inUse {
            entries[index].inUse = true
            entries[index].hash = h.full
            let bucket = Int(truncatingIfNeeded: h.question) & bucketMask
            entries[index].bucket = Int32(bucket)
            entries[index].nextInBucket = buckets[bucket].load(ordering: .relaxed)
            buckets[bucket].store(Int32(index), ordering: .relaxed)
            count += 1
            entries[index].hits = 0
        }
        entries[index].referenced = false
        entries[index].prefetching = false
        entries[index].length = UInt16(answer.count)
        entries[index].questionEnd = UInt16(end)
        entries[index].flags = flags
        entries[index].key = key
        entries[index].storedAt = now
        entries[index].ttl = lifetime
        entries[index].recordCount = UInt8(offsets.count)
        let stored = slot(index).baseAddress!
        stored.copyMemory(from: p, byteCount: answer.count)
        var entry = stored + answer.count
        for i in 0..<offsets.count {
            entry.storeBytes(of: scratchOffsets[i], as: UInt16.self)
            entry.storeBytes(of: scratchTTLs[i], toByteOffset: 2, as: UInt32.self)
            entry += Self.ttlEntrySize
        }
        inserted += 1
    }

    /// Lets a prefetch that failed be tried again later.
    func prefetchFailed(_ query: UnsafeRawBufferPointer, end: Int, flags: UInt8, key: CacheKey, hash: Hash? = nil) {
        let h = hash ?? self.hash(query, end: end, flags: flags, key: key)
        if let index = find(query, end: end, flags: flags, key: key, hash: h) { entries[index].prefetching = false }
    }

    /// A free entry: an unused one, or the first the CLOCK hand finds not referenced since it
    /// last passed (its bit is cleared as the hand goes by).
    private func freeEntry() -> Int {
        if count < capacity {
            // Entries fill in order until the first eviction.
            while entries[hand].inUse { hand = (hand + 1) % capacity }
            let index = hand
            hand = (hand + 1) % capacity
            return index
        }
        while entries[hand].referenced {
            entries[hand].referenced = false
            hand = (hand + 1) % capacity
        }
        let index = hand
        hand = (hand + 1) % capacity
        remove(index)
        evicted += 1
        return index
    }

    private func remove(_ index: Int) {
        let bucket = Int(entries[index].bucket)
        if buckets[bucket].load(ordering: .relaxed) == Int32(index) {
            buckets[bucket].store(entries[index].nextInBucket, ordering: .relaxed)
        } else {
            var at = buckets[bucket].load(ordering: .relaxed)
            while at >= 0 && entries[Int(at)].nextInBucket != Int32(index) { at = entries[Int(at)].nextInBucket }
            if at >= 0 { entries[Int(at)].nextInBucket = entries[index].nextInBucket }
        }
        entries[index] = Entry()
        count -= 1
    }
}
