import RelayCore
import Synchronization

/// The answer cache all workers share: shards (twice as many as the workers that use it, up to 64,
/// at least 64 entries each; one for a single worker), each an `AnswerCache` behind its own lock, a key's shard chosen
/// by the top bits of its question's hash (the shard's buckets use the low bits). The shards hold `entries`
/// between them.
///
/// SO_REUSEPORT spreads a LAN's clients over the workers, so with a cache per worker every
/// popular name was fetched and kept once per worker, and its hit rate fell with the worker count.
/// Shared, a name is fetched once, kept once, and prefetched once (the entry's `prefetching` flag
/// is seen by every worker). A lookup takes one lock that another worker holds only when it is in
/// the same shard at that moment (a worker holds a lock for well under 1 % of its time, so twice
/// the workers' count of shards makes waiting rare). More shards would not help and do cost:
/// measured with 64 shards on 1 worker, a cache hit spent ~0.2 µs more than with 1 (the hot
/// entries spread over 64 sets of arrays miss the caches and the TLB more); docs/CACHE.md.
public final class SharedAnswerCache: @unchecked Sendable {
    public let settings: AnswerCache.Settings
    /// A shard and its lock (Mutex is not copyable, so each lives in a box of its own). Not
    /// padded apart: with the boxes padded to two cache lines, bench/cache-sharing.swift measured
    /// the same cost (a lock's line moves between cores when the other worker last took it,
    /// neighbour or not).
    final class Shard: Sendable {
        let lock: Mutex<AnswerCache>
        init(_ cache: AnswerCache) { lock = Mutex(cache) }
    }

    static let maxShardBits = 6
    private let shardBits: Int
    private let shards: [Shard]
    /// Each shard's tables, reachable without its lock (`CachePrefetch`).
    let storages: [AnswerCache.Storage]
    /// The hashes' seed, random per process.
    let seed: UInt64
    public var shardCount: Int { shards.count }

    /// `settings.entries` in all, spread over the shards; `workers`: how many threads use it.
    public init(settings: AnswerCache.Settings, workers: Int = 1) {
        self.settings = settings
        var bits = 0
        // One worker alone takes its locks uncontended: one shard.
        let wanted = workers > 1 ? 2 * workers : 1
        while bits < Self.maxShardBits && 1 << bits < wanted && settings.entries >> (bits + 1) >= 64 { bits += 1 }
        shardBits = bits
        let count = 1 << bits
        let seed = UInt64.random(in: .min ... .max)
        self.seed = seed
        let caches = (0..<count).map { i in
            var perShard = settings
            perShard.entries = settings.entries / count + (i < settings.entries % count ? 1 : 0)
            return AnswerCache(settings: perShard, seed: seed)
        }
        storages = caches.map(\.storage)
        shards = caches.map(Shard.init)
    }

    public var isEnabled: Bool { settings.entries > 0 }

    /// The shard of a question's hash (`AnswerCache.Hash.question`).
    @inline(__always)
    func shardIndex(_ questionHash: UInt64) -> Int { Int(truncatingIfNeeded: questionHash >> UInt64(64 - shardBits)) }

    @inline(__always)
    private func shard(_ hash: AnswerCache.Hash) -> Shard { shards[shardIndex(hash.question)] }

    @inline(__always)
    private func hash(_ message: UnsafeRawBufferPointer, end: Int, flags: UInt8, key: CacheKey) -> AnswerCache.Hash {
        AnswerCache.hash(question: message, end: end, flags: flags, key: key, seed: seed)
    }

    @inline(__always)
    func lookup(_ query: UnsafeRawBufferPointer, end: Int, flags: UInt8, key: CacheKey, now: UInt32,
                into out: UnsafeMutableRawBufferPointer) -> AnswerCache.Lookup {
        let h = hash(query, end: end, flags: flags, key: key)
        return shard(h).lock.withLock { $0.lookup(query, end: end, flags: flags, key: key, now: now, into: out, hash: h) }
    }

    func stale(_ query: UnsafeRawBufferPointer, end: Int, flags: UInt8, key: CacheKey, now: UInt32,
               into out: UnsafeMutableRawBufferPointer) -> Int? {
        let h = hash(query, end: end, flags: flags, key: key)
        return shard(h).lock.withLock { $0.stale(query, end: end, flags: flags, key: key, now: now, into: out, hash: h) }
    }

    @inline(__always)
    func insert(_ answer: UnsafeRawBufferPointer, end: Int, flags: UInt8, key: CacheKey, now: UInt32) {
        // The hash is taken before the lock, and nothing of the answer is parsed under it twice.
        let h = hash(answer, end: end, flags: flags, key: key)
        shard(h).lock.withLock { $0.insert(answer, end: end, flags: flags, key: key, now: now, hash: h) }
    }

    func prefetchFailed(_ query: UnsafeRawBufferPointer, end: Int, flags: UInt8, key: CacheKey) {
        let h = hash(query, end: end, flags: flags, key: key)
        shard(h).lock.withLock { $0.prefetchFailed(query, end: end, flags: flags, key: key, hash: h) }
    }

    /// Totals over the shards (each lock taken in turn): answers held, evicted, too large to keep.
    public var totals: (entries: Int, evicted: Int, tooLarge: Int) {
        shards.reduce((0, 0, 0)) { sum, shard in
            shard.lock.withLock { (sum.0 + $0.count, sum.1 + $0.evicted, sum.2 + $0.tooLarge) }
        }
    }
}
