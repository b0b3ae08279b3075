import DNS
import RelayCore

/// The answer cache on the datapath (the cache itself is Cache/AnswerCache.swift): looked up
/// after the rules (a block or a local answer never reaches it, and a rule added by a reload
/// applies to cached names at once), filled as answers arrive, and asked for stale answers when
/// the upstream fails.
extension Worker {
    /// The server part of the cache key: a `server=/d/` upstream, else in `original` mode the
    /// server the client asked (two servers may answer a name differently), else one key for the
    /// configured servers.
    @inline(__always)
    func cacheServer(rule: Endpoint?, destination: Endpoint) -> Endpoint {
        if let rule { return rule }
        return settings.mode == .original ? destination : Self.configuredServersKey
    }

    static let configuredServersKey = Endpoint(address: .anyV4, port: 0)

    /// A cached answer for the query in `payload`, in `cacheScratch`, cut to `limit` bytes (TC=1)
    /// when longer. nil on a miss. When the entry should be refreshed, also sends the query
    /// upstream as a prefetch (its answer only refills the cache).
    @inline(__always)
    func cachedAnswer(_ payload: UnsafeRawBufferPointer, query: ParsedQuery, client: Endpoint, destination: Endpoint,
                      server: Endpoint?, limit: Int, now: UInt64) -> Int? {
        guard cache.isEnabled else { return nil }
        let key = cacheServer(rule: server, destination: destination)
        switch cache.lookup(payload, end: query.questionEnd, flags: query.cacheFlags, server: key, now: nowSeconds, into: cacheScratch) {
        case .miss:
            return nil
        case .hit(let length, let prefetch):
            if prefetch { startPrefetch(payload, query: query, client: client, destination: destination, server: server, now: now) }
            if length > limit {
                counters.truncatedForClients += 1
                return ResponseBuilder.truncate(in: UnsafeMutableRawBufferPointer(rebasing: cacheScratch[0..<length]), withOPT: query.hasEDNS) ?? length
            }
            return length
        }
    }

    /// Asks the upstream again for a popular entry about to expire; nobody waits for the answer.
    private func startPrefetch(_ payload: UnsafeRawBufferPointer, query: ParsedQuery, client: Endpoint, destination: Endpoint,
                               server: Endpoint?, now: UInt64) {
        guard let index = admit(payload, query: query, client: client, destination: destination, server: server) else { return }
        inFlight[index].prefetch = true
        counters.cachePrefetches += 1
        sendPrefetch(index, now: now)
    }

    /// Keeps an upstream answer that is about to be delivered for entry `index`.
    @inline(__always)
    func remember(_ index: Int, answer: UnsafeRawBufferPointer) {
        guard cache.isEnabled, inFlight[index].cacheable else { return }
        cache.insert(answer, end: inFlight[index].questionEnd, flags: inFlight[index].cacheFlags,
                     server: inFlight[index].cacheServer, now: nowSeconds)
    }

    /// When the upstream failed: an expired answer still inside the serve-stale window, in
    /// `cacheScratch` (every TTL 30 s), or nil.
    func staleAnswer(_ index: Int) -> Int? {
        guard cache.isEnabled, inFlight[index].cacheable else { return nil }
        return cache.stale(inFlight.query(index), end: inFlight[index].questionEnd, flags: inFlight[index].cacheFlags,
                           server: inFlight[index].cacheServer, now: nowSeconds, into: cacheScratch)
    }

    /// A prefetch that failed: the entry may be refreshed by a later hit.
    func prefetchFailed(_ index: Int) {
        cache.prefetchFailed(inFlight.query(index), end: inFlight[index].questionEnd, flags: inFlight[index].cacheFlags,
                             server: inFlight[index].cacheServer)
    }
}
