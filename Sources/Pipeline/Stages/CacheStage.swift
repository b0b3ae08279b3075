import DNS
import RelayCore

/// The answer cache as a pipeline stage (the cache itself, shared by every worker, is
/// Cache/SharedAnswerCache.swift): asked after the rules (a block or a local answer never reaches
/// it, and a rule added by a reload applies to cached names at once), filled as answers arrive,
/// asked for stale answers when the upstream fails. One per worker; it owns the scratch space
/// answers are written out through, and counts this worker's hits and misses.
public final class CacheStage {
    public let cache: SharedAnswerCache
    /// Where answers are copied out before they go over the query (a cached answer carries the
    /// client's own question bytes, read from the query as it is written).
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: AnswerCache.slotSize + 64, alignment: 8)

    /// A copy of the last query whose hit asked for a prefetch (the hit's answer went over it).
    private let prefetchScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
    /// The query to send upstream as a prefetch, after a hit whose `prefetch` is true; valid
    /// until the next lookup.
    public private(set) var prefetchQuery = UnsafeRawBufferPointer(start: nil, count: 0)

    // This worker's counts (the shards count too, for all workers together).
    private var hits = 0
    private var misses = 0
    private var inserted = 0
    private var staleServed = 0

    /// A stage over `cache`, the one all workers share.
    public init(shared cache: SharedAnswerCache) { self.cache = cache }

    /// A stage with a cache of its own (`explain`, tests).
    public convenience init(_ settings: AnswerCache.Settings) { self.init(shared: SharedAnswerCache(settings: settings)) }

    deinit {
        scratch.deallocate()
        prefetchScratch.deallocate()
    }

    public var isEnabled: Bool { cache.isEnabled }

    /// A fresh cached answer for the query in `buffer`, written over it and cut to `limit` bytes
    /// (TC=1) when longer; nil on a miss. `prefetch`: the entry is popular and about to expire.
    @inline(__always)
    func lookup(_ buffer: UnsafeMutableRawBufferPointer, queryLength: Int, query: ParsedQuery, key: CacheKey, limit: Int,
                now: UInt32) -> (length: Int, prefetch: Bool, truncated: Bool)? {
        guard cache.isEnabled else { return nil }
        let payload = UnsafeRawBufferPointer(rebasing: buffer[0..<queryLength])
        var found = cache.lookup(payload, end: query.questionEnd, flags: query.cacheFlags, key: key, now: now, into: scratch)
        if case .miss = found, key.allowsShared {
            // ECS: an answer of scope 0 is kept once for every client (RFC 7871 §7.3.1).
            found = cache.lookup(payload, end: query.questionEnd, flags: query.cacheFlags, key: key.shared, now: now, into: scratch)
        }
        switch found {
        case .miss:
            misses += 1
            return nil
        case .hit(let length, let prefetch):
            hits += 1
            if prefetch && queryLength <= prefetchScratch.count {
                // Rare (a popular entry in the last tenth of its TTL): keep the query to ask again.
                prefetchScratch.baseAddress!.copyMemory(from: buffer.baseAddress!, byteCount: queryLength)
                prefetchQuery = UnsafeRawBufferPointer(rebasing: prefetchScratch[0..<queryLength])
            }
            buffer.baseAddress!.copyMemory(from: scratch.baseAddress!, byteCount: length)
            let refresh = prefetch && queryLength <= prefetchScratch.count
            guard length > limit else { return (length, refresh, false) }
            let cut = ResponseBuilder.truncate(in: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length]), withOPT: query.hasEDNS) ?? length
            return (cut, refresh, true)
        }
    }

    /// Keeps an upstream answer (`answer`) to the query whose question ends at `questionEnd`.
    @inline(__always)
    public func remember(_ answer: UnsafeRawBufferPointer, questionEnd: Int, flags: UInt8, key: CacheKey, now: UInt32) {
        guard cache.isEnabled else { return }
        cache.insert(answer, end: questionEnd, flags: flags, key: key, now: now)
        inserted += 1
    }

    /// When the upstream failed: an expired answer still inside the serve-stale window (every TTL
    /// 30 s) for the query at the start of `buffer`, written over it; its length, or nil.
    public func stale(_ buffer: UnsafeMutableRawBufferPointer, questionEnd: Int, flags: UInt8, key: CacheKey, now: UInt32) -> Int? {
        guard cache.isEnabled,
              let length = cache.stale(UnsafeRawBufferPointer(buffer), end: questionEnd, flags: flags, key: key, now: now, into: scratch)
                  ?? (key.allowsShared ? cache.stale(UnsafeRawBufferPointer(buffer), end: questionEnd, flags: flags, key: key.shared, now: now,
                                                     into: scratch) : nil),
              length <= buffer.count
        else { return nil }
        buffer.baseAddress!.copyMemory(from: scratch.baseAddress!, byteCount: length)
        staleServed += 1
        return length
    }

    /// A prefetch that failed: the entry may be refreshed by a later hit.
    public func prefetchFailed(_ query: UnsafeRawBufferPointer, questionEnd: Int, flags: UInt8, key: CacheKey) {
        cache.prefetchFailed(query, end: questionEnd, flags: flags, key: key)
        if key.allowsShared { cache.prefetchFailed(query, end: questionEnd, flags: flags, key: key.shared) }
    }

    /// This worker's counts, for it to publish (answers offered to the cache, of which some
    /// another worker's copy had already replaced or were too large to keep).
    public var statistics: (hits: Int, misses: Int, inserted: Int, stale: Int) { (hits, misses, inserted, staleServed) }
}
