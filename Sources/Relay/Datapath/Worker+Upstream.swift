import DNS
import LinuxNet
import Pipeline
import QueryLog
import RelayCore
import Rules

/// Queries in flight: admitted to the table, sent upstream over UDP (from this batch's socket,
/// on a fresh random port) or TCP (`UpstreamTCP`), answered when a matching answer arrives,
/// retried on the next server or failed (SERVFAIL, or a stale answer) when it does not.
extension Worker {
    // MARK: Admission

    /// Takes a free in-flight entry for a query: copies it, records who asked whom and where it
    /// goes, and gives it a fresh random ID. nil (counted) when the table is full. An alias
    /// (`forward.aliasRule`) keeps the client's header and question aside and carries the query
    /// for the target instead.
    @inline(__always)
    func admit(_ payload: UnsafeRawBufferPointer, facts: QueryFacts, forward: Forward, rule: RuleOrigin, now: UInt64) -> Int? {
        // Both paths refuse longer queries before this; an entry's slot must never be overrun.
        guard payload.count <= inFlight.maxQueryLength else {
            counters.droppedOversize += 1
            return nil
        }
        guard let index = inFlight.allocate(random: random) else {
            counters.droppedOverload += 1
            return nil
        }
        let stored = inFlight.buffer(index)
        stored.baseAddress!.copyMemory(from: payload.baseAddress!, byteCount: payload.count)
        if forward.byRule { counters.forwardedByRule += 1 }
        inFlight[index].clientID = DNSHeader.id(payload.baseAddress!)
        inFlight[index].client = facts.client
        inFlight[index].originalDestination = facts.destination
        inFlight[index].server = forward.server
        inFlight[index].serverIndex = forward.serverIndex
        inFlight[index].aliasQuestionEnd = 0
        inFlight[index].cacheFlags = facts.query.cacheFlags
        inFlight[index].cacheKey = forward.cacheKey
        inFlight[index].cacheable = forward.cacheable
        inFlight[index].subnetAdded = false
        inFlight[index].optAdded = false
        inFlight[index].subnetKept = false
        inFlight[index].leftFromClient = false
        inFlight[index].prefetch = false
        inFlight[index].rule = rule
        inFlight[index].stripHints = forward.stripHints
        inFlight[index].receivedAt = now
        inFlight[index].queryLength = payload.count
        inFlight[index].questionEnd = facts.query.questionEnd
        inFlight[index].hasEDNS = facts.query.hasEDNS
        inFlight[index].clientPayloadSize = 65535
        inFlight[index].reply = .udp
        inFlight[index].upstreamConnection = -1
        inFlight[index].upstreamFD = -1
        inFlight[index].retriedOverTCP = false
        DNSHeader.setID(stored.baseAddress!, inFlight[index].upstreamID)
        if forward.aliasRule != nil {
            guard let target = pipeline.aliasTarget(forward), becomeAlias(index, target: target, query: facts.query) else {
                inFlight.release(index)
                return nil
            }
        }
        prepare(index, identity: forward.identity)
        return index
    }

    /// Rewrites entry `index` into the query for `target`, the client's header and question kept
    /// at `aliasOffset`. Neither guard can fail for a parsed query (question ≤ 271 bytes, target
    /// ≤ 253), but an entry that cannot be built is freed rather than sent half-made.
    private func becomeAlias(_ index: Int, target: String, query: ParsedQuery) -> Bool {
        let buffer = inFlight.buffer(index)
        let aside = InFlightTable.aliasOffset
        guard query.questionEnd <= buffer.count - aside else { return false }
        (buffer.baseAddress! + aside).copyMemory(from: buffer.baseAddress!, byteCount: query.questionEnd)
        guard let built = AliasAnswer.query(target: target, type: query.type,
                                            header: UnsafeRawBufferPointer(rebasing: buffer[aside..<(aside + DNSHeader.size)]),
                                            withOPT: query.hasEDNS, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<aside])) else {
            return false
        }
        inFlight[index].queryLength = built.length
        inFlight[index].questionEnd = built.questionEnd
        inFlight[index].aliasQuestionEnd = query.questionEnd
        counters.aliasesResolved += 1
        return true
    }

    // MARK: Sending

    @inline(__always)
    func pickBatchSockets() {
        batchFD4 = pool4.pick(random)
        batchFD6 = pool6?.pick(random) ?? -1
    }

    /// After a batch of upstream queries went out: each socket that carried some is replaced by
    /// one on a new random port (UpstreamSocketPool).
    @inline(__always)
    func upstreamBatchSent(now: UInt64) {
        upstreamSender.flush()
        pool4.batchSent(now: now, timeoutNanoseconds: settings.timeoutNanoseconds)
        pool6?.batchSent(now: now, timeoutNanoseconds: settings.timeoutNanoseconds)
        sourceSockets?.batchSent(now: now, timeoutNanoseconds: settings.timeoutNanoseconds)
        // The batch's sockets may have been replaced: what is sent next (a prefetch from a TCP
        // query, a retry) must go out on a socket of the pool, never on a replaced one.
        pickBatchSockets()
    }

    /// The upstream sockets that queries in flight over UDP went out on.
    func busyUpstreamSockets() -> Set<Int32> {
        var busy = Set<Int32>()
        inFlight.forEachScheduled { index in
            if inFlight[index].upstreamFD >= 0 { busy.insert(inFlight[index].upstreamFD) }
        }
        return busy
    }

    /// Sends entry `index` to `server` over UDP from this batch's socket of the right family (or
    /// from the client's own address: `upstreamDescriptor`) and schedules its timeout. Without a
    /// socket of that family the client gets SERVFAIL at once.
    @inline(__always)
    func sendUDP(_ index: Int, to server: Endpoint, now: UInt64) -> Bool {
        let fd = upstreamDescriptor(index, server: server, now: now)
        guard fd >= 0 else {
            failQuery(index)
            return false
        }
        inFlight[index].upstreamFD = fd
        inFlight[index].upstreamConnection = -1
        inFlight.schedule(index, deadline: now + settings.timeoutNanoseconds)
        if settings.metrics { upstreamTally.count(.queries, slot: upstreamTally.slot(serverIndex: inFlight[index].serverIndex)) }
        upstreamSender.enqueue(fd: fd, bytes: inFlight.query(index), to: server)
        tapForwarderQuery(index, tcp: false, now: now)
        return true
    }

    /// Sends entry `index` over TCP; SERVFAIL when no connection can be made.
    func sendTCP(_ index: Int, to server: Endpoint, now: UInt64) {
        let source = inFlight[index].identity == .source ? inFlight[index].client.address : nil
        if settings.metrics { upstreamTally.count(.queries, slot: upstreamTally.slot(serverIndex: inFlight[index].serverIndex)) }
        guard upstreamTCP.send(index, to: server, source: source, now: now) else {
            failQuery(index)
            return
        }
        tapForwarderQuery(index, tcp: true, now: now)
    }

    // MARK: Answers over UDP

    func receiveAnswers(fd: Int32) {
        for _ in 0..<Worker.roundsPerEvent {
            let n: Int
            do { n = try answerReceiver.receive(from: fd) } catch {
                // ICMP errors and the like on an unconnected socket: nothing to do but go on.
                return
            }
            if n == 0 { return }
            for i in 0..<n { handleAnswer(i, fd: fd) }
            clientSender.flush()
            if n < answerReceiver.capacity { return }
        }
    }

    /// Accepts an answer only when its ID, source address and port, the socket it arrived on and
    /// its question all match a query in flight (RFC 5452); anything else is dropped and counted.
    @inline(__always)
    private func handleAnswer(_ i: Int, fd: Int32) {
        let payload = answerReceiver.payload(i)
        guard payload.count >= DNSHeader.size, let base = payload.baseAddress,
              DNSHeader.isResponse(base),
              let index = inFlight.lookup(id: DNSHeader.id(base)),
              inFlight[index].upstreamFD == fd, inFlight[index].upstreamConnection < 0,
              let source = answerReceiver.source(i), source == inFlight[index].server,
              Question.matches(query: inFlight.query(index), end: inFlight[index].questionEnd, response: UnsafeRawBufferPointer(payload))
        else {
            counters.upstreamMismatches += 1
            if settings.metrics, let source = answerReceiver.source(i) { upstreamTally.count(.mismatches, slot: upstreamTally.slot(source: source)) }
            return
        }
        if DNSHeader.flags(base) & DNSHeader.truncatedFlag != 0 || answerReceiver.isTruncated(i) {
            // Truncated upstream: ask the same server again over TCP, once (RFC 7766 §5).
            if !inFlight[index].retriedOverTCP {
                counters.tcpRetries += 1
                inFlight[index].retriedOverTCP = true
                inFlight.assignID(index, random: random)
                DNSHeader.setID(inFlight.buffer(index).baseAddress!, inFlight[index].upstreamID)
                sendTCP(index, to: inFlight[index].server, now: SystemInfo.monotonicNanoseconds())
                return
            }
            counters.truncatedAnswers += 1
        }
        deliver(index, answer: answerReceiver.slot(i), length: payload.count)
    }

    // MARK: Timeouts

    /// Retries timed-out queries on the next configured server, or answers SERVFAIL.
    func expire(now: UInt64) {
        guard let first = inFlight.earliest, inFlight[first].deadline <= now else { return }
        pickBatchSockets()
        while let index = inFlight.earliest, inFlight[index].deadline <= now {
            counters.upstreamTimeouts += 1
            if settings.metrics { upstreamTally.count(.timeouts, slot: upstreamTally.slot(serverIndex: inFlight[index].serverIndex)) }
            let overTCP = inFlight[index].upstreamConnection >= 0
            if overTCP { upstreamTCP.forget(index) }
            if let (server, next, identity) = pipeline.upstream.next(after: inFlight[index].serverIndex) {
                counters.upstreamRetries += 1
                inFlight[index].serverIndex = next
                inFlight[index].server = server
                prepare(index, identity: identity)
                inFlight.assignID(index, random: random)
                DNSHeader.setID(inFlight.buffer(index).baseAddress!, inFlight[index].upstreamID)
                if overTCP {
                    sendTCP(index, to: server, now: now)
                } else {
                    _ = sendUDP(index, to: server, now: now)
                }
            } else {
                failQuery(index)
            }
        }
        upstreamBatchSent(now: now)
        clientSender.flush()
    }
}
