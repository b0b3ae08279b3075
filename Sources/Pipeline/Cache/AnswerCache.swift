import DNS
import RelayCore

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
    static let slotStride = slotSize + maxRecords * ttlEntrySize
    static let staleTTL: UInt32 = 30

    struct Entry {
        var inUse = false
        var referenced = false
        var prefetching = false
        var hash: UInt64 = 0
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
    private var entries: [Entry]
    private var buckets: [Int32]
    private let bucketMask: Int
    private let answers: UnsafeMutableRawBufferPointer
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

    init(settings: Settings) {
        self.settings = settings
        let capacity = max(1, settings.entries)
        entries = [Entry](repeating: Entry(), count: capacity)
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        buckets = [Int32](repeating: -1, count: size)
        bucketMask = size - 1
        answers = .allocate(byteCount: capacity * Self.slotStride, alignment: 16)
    }

    deinit { answers.deallocate() }

    var isEnabled: Bool { settings.entries > 0 }

    // MARK: Keys

    /// The key's hash: the question name folded to lower case, type, class, flags, server, clients.
    @inline(__always)
    static func hash(question message: UnsafeRawBufferPointer, end: Int, flags: UInt8, key: CacheKey) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        var i = DNSHeader.size
        while i < end {
            var c = message[i]
            if c >= 0x41 && c <= 0x5a { c |= 0x20 }
            h = (h ^ UInt64(c)) &* 0x0000_0100_0000_01b3
            i += 1
        }
        h = (h ^ UInt64(flags)) &* 0x0000_0100_0000_01b3
        h = (h ^ UInt64(key.server.port)) &* 0x0000_0100_0000_01b3
        h = mix(h, key.server.address)
        if !key.isShared {
            h = (h ^ UInt64(key.clients.length)) &* 0x0000_0100_0000_01b3
            h = mix(h, key.clients.address)
        }
        return h ^ (h >> 31)
    }

    @inline(__always)
    private static func mix(_ h: UInt64, _ address: IPAddress) -> UInt64 {
        switch address {
        case .v4(let a): return (h ^ UInt64(a.rawValue)) &* 0x0000_0100_0000_01b3
        case .v6(let a): return (h ^ a.high ^ (a.low &* 31)) &* 0x0000_0100_0000_01b3
        }
    }

    @inline(__always)
    private func slot(_ index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: answers[(index * Self.slotStride)..<((index + 1) * Self.slotStride)])
    }

    @inline(__always)
    private func find(_ query: UnsafeRawBufferPointer, end: Int, flags: UInt8, key: CacheKey, hash: UInt64) -> Int? {
        var index = buckets[Int(truncatingIfNeeded: hash) & bucketMask]
        while index >= 0 {
            let e = entries[Int(index)]
            if e.hash == hash && Int(e.questionEnd) == end && e.flags == flags && e.key == key
                && Question.matches(query: query, end: end, response: UnsafeRawBufferPointer(slot(Int(index)))) {
                return Int(index)
            }
            index = e.nextInBucket
        }
        return nil
    }

    // MARK: Lookups

    /// A fresh answer for the query in `query` (its question ends at `end`), written to `out`
    /// with the client's ID and question bytes and counted-down TTLs; `.miss` when there is none
    /// (an expired entry is a miss here; `stale` hands it out when the upstream fails).
    @inline(__always)
    func lookup(_ query: UnsafeRawBufferPointer, end: Int, flags: UInt8, key: CacheKey, now: UInt32,
                into out: UnsafeMutableRawBufferPointer, hash: UInt64? = nil) -> Lookup {
        let h = hash ?? Self.hash(question: query, end: end, flags: flags, key: key)
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
               into out: UnsafeMutableRawBufferPointer, hash: UInt64? = nil) -> Int? {
        let h = hash ?? Self.hash(question: query, end: end, flags: flags, key: key)
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
    func insert(_ answer: UnsafeRawBufferPointer, end: Int, flags: UInt8, key: CacheKey, now: UInt32, hash: UInt64? = nil) {
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

        let h = hash ?? Self.hash(question: answer, end: end, flags: flags, key: key)
        let index = find(answer, end: end, flags: flags, key: key, hash: h) ?? freeEntry()
        if !entries[index].inUse {
            entries[index].inUse = true
            entries[index].hash = h
            let bucket = Int(truncatingIfNeeded: h) & bucketMask
            entries[index].nextInBucket = buckets[bucket]
            buckets[bucket] = Int32(index)
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
    func prefetchFailed(_ query: UnsafeRawBufferPointer, end: Int, flags: UInt8, key: CacheKey, hash: UInt64? = nil) {
        let h = hash ?? Self.hash(question: query, end: end, flags: flags, key: key)
        if let index = find(query, end: end, flags: flags, key: key, hash: h) { entries[index].prefetching = false }
    }

    /// A free entry: an unused one, or the first the CLOCK hand finds not referenced since it
    /// last passed (its bit is cleared as the hand goes by).
    private func freeEntry() -> Int {
        if count < entries.count {
            // Entries fill in order until the first eviction.
            while entries[hand].inUse { hand = (hand + 1) % entries.count }
            let index = hand
            hand = (hand + 1) % entries.count
            return index
        }
        while entries[hand].referenced {
            entries[hand].referenced = false
            hand = (hand + 1) % entries.count
        }
        let index = hand
        hand = (hand + 1) % entries.count
        remove(index)
        evicted += 1
        return index
    }

    private func remove(_ index: Int) {
        let bucket = Int(truncatingIfNeeded: entries[index].hash) & bucketMask
        if buckets[bucket] == Int32(index) {
            buckets[bucket] = entries[index].nextInBucket
        } else {
            var at = buckets[bucket]
            while at >= 0 && entries[Int(at)].nextInBucket != Int32(index) { at = entries[Int(at)].nextInBucket }
            if at >= 0 { entries[Int(at)].nextInBucket = entries[index].nextInBucket }
        }
        entries[index] = Entry()
        count -= 1
    }
}
