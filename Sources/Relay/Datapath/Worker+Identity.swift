import DNS
import Pipeline
import RelayCore

/// What upstreams learn of the client (`upstream.client_identity`, docs/DESIGN.md "The upstream
/// sees the client"): before each try the stored query is made to carry it (an ECS option for
/// `subnet`) and the try leaves from the right socket (one bound to the client's address for
/// `source`); an answer loses what was added for the upstream before it is cached or sent, and is
/// cached for the clients its identity covers.
extension Worker {
    /// Makes entry `index`'s stored query fit what its next server learns: the client's subnet
    /// added (or the client's own kept), or taken out again for a server that is not to see it.
    @inline(__always)
    func prepare(_ index: Int, identity: Forward.Identity) {
        inFlight[index].identity = identity
        if identity == .subnet {
            guard !inFlight[index].subnetAdded && !inFlight[index].subnetKept else { return }
            addSubnet(index)
        } else if inFlight[index].subnetAdded {
            let buffer = inFlight.buffer(index)
            let length = inFlight[index].queryLength, end = inFlight[index].questionEnd
            inFlight[index].queryLength = inFlight[index].optAdded ? ClientSubnet.removeOPT(buffer, length: length, questionEnd: end)
                                                                   : ClientSubnet.strip(buffer, length: length, questionEnd: end)
            inFlight[index].subnetAdded = false
            inFlight[index].optAdded = false
        }
    }

    private func addSubnet(_ index: Int) {
        let subnet = pipeline.upstream.subnet(of: inFlight[index].client.address)
        // An alias keeps the client's question at `aliasOffset`: the query must stay before it.
        let room = inFlight[index].aliasQuestionEnd > 0 ? InFlightTable.aliasOffset : inFlight.maxQueryLength
        let buffer = UnsafeMutableRawBufferPointer(rebasing: inFlight.buffer(index)[0..<room])
        switch ClientSubnet.apply(subnet, to: buffer, length: inFlight[index].queryLength, questionEnd: inFlight[index].questionEnd,
                                  keepExisting: settings.keepClientSubnet) {
        case .set(let length, let addedOPT):
            counters.subnetsAdded += 1
            inFlight[index].queryLength = length
            inFlight[index].subnetAdded = true
            inFlight[index].subnetBits = UInt8(subnet.length)
            inFlight[index].optAdded = addedOPT
        case .keptClients:
            // The answer is for the subnet the client named, not for its address: not cached.
            counters.subnetsKept += 1
            inFlight[index].subnetKept = true
            inFlight[index].cacheable = false
        case .unchanged:
            counters.subnetsUnchanged += 1
        }
    }

    /// The UDP socket a try of entry `index` to `server` leaves from: one bound to the client's
    /// address (`source`; from this host's own when none can be had, counted), or this batch's
    /// socket of the server's family (-1 when there is none).
    @inline(__always)
    func upstreamDescriptor(_ index: Int, server: Endpoint, now: UInt64) -> Int32 {
        if inFlight[index].identity == .source, let sourceSockets {
            if let fd = sourceSockets.descriptor(client: inFlight[index].client.address, server: server,
                                                 closeAt: now + settings.timeoutNanoseconds + 100_000_000) {
                inFlight[index].leftFromClient = true
                return fd
            }
            counters.sourceFallbacks += 1
            if let why = sourceSockets.lastError { warn(why) }
        }
        inFlight[index].leftFromClient = false
        if server.address.isIPv6 {
            pool6?.used()
            return batchFD6
        }
        pool4.used()
        return batchFD4
    }

    /// Takes out of the answer in the first `length` bytes of `answer` what was put in for the
    /// upstream (the ECS option, or the whole OPT record the client did not send), and says whose
    /// it is: the cache key to keep it under, or nil when it must not be kept (RFC 7871 §7.3: a
    /// scope narrower than the subnet sent). Its new length.
    @inline(__always)
    func identityAnswer(_ index: Int, answer: UnsafeMutableRawBufferPointer, length: Int) -> (length: Int, key: CacheKey?) {
        let key = inFlight[index].cacheKey
        guard inFlight[index].subnetAdded else { return (length, key) }
        let end = inFlight[index].questionEnd
        // No ECS in the answer counts as scope 0: valid for every client (§7.3).
        let scope = ClientSubnet.scope(in: UnsafeRawBufferPointer(rebasing: answer[0..<length]), questionEnd: end) ?? 0
        let stripped = inFlight[index].optAdded ? ClientSubnet.removeOPT(answer, length: length, questionEnd: end)
                                                : ClientSubnet.strip(answer, length: length, questionEnd: end)
        if scope == 0 { return (stripped, key.allowsShared ? key.shared : key) }
        if scope > Int(inFlight[index].subnetBits) {
            counters.subnetScopeNarrow += 1
            return (stripped, nil)
        }
        return (stripped, key)
    }

    /// What the upstream saw of entry `index`'s client, for the query log.
    @inline(__always)
    func loggedIdentity(_ index: Int) -> IPPrefix? {
        if inFlight[index].leftFromClient { return IPPrefix(address: inFlight[index].client.address, length: 128) }
        if inFlight[index].subnetAdded { return IPPrefix(address: inFlight[index].client.address, length: Int(inFlight[index].subnetBits)) }
        return nil
    }
}
