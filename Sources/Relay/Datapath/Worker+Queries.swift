import DNS
import LinuxNet
import Pipeline
import QueryLog
import RelayCore

/// Queries, from UDP batches or client TCP connections, through one path: classify, ask the
/// pipeline, then answer now (log, then reply over UDP or TCP: `respond`) or admit the query to
/// the in-flight table and send it upstream.
extension Worker {
    // MARK: UDP intake

    func receiveQueries(fd: Int32) {
        for _ in 0..<Worker.roundsPerEvent {
            let n: Int
            do { n = try queryReceiver.receive(from: fd) } catch {
                warn("recvmmsg on a listener failed: \(error)")
                return
            }
            if n == 0 { return }
            let now = SystemInfo.monotonicNanoseconds()
            pickBatchSockets()
            rulePrefetch.fetch(pipeline.rules.rules, count: n) { UnsafeRawBufferPointer(queryReceiver.payload($0)) }
            let cache = pipeline.cache.cache
            cachePrefetch.fetch(cache, count: n) { UnsafeRawBufferPointer(queryReceiver.payload($0)) }
            cachePrefetch.fetchEntry(0, in: cache)
            for i in 0..<n {
                cachePrefetch.fetchEntry(i + 1, in: cache)
                handleDatagram(i, now: now)
            }
            upstreamBatchSent(now: now)
            clientSender.flush()
            if localAnswersInBatch > 0 {
                answerTally.local.observe(nanoseconds: SystemInfo.monotonicNanoseconds() &- now, count: localAnswersInBatch)
                localAnswersInBatch = 0
            }
            if n < queryReceiver.capacity { return }
        }
    }

    @inline(__always)
    private func handleDatagram(_ i: Int, now: UInt64) {
        counters.received += 1
        if queryReceiver.isTruncated(i) {
            counters.droppedOversize += 1
            return
        }
        guard let client = queryReceiver.source(i),
              let destination = queryReceiver.controlMessages(i).originalDestination
        else {
            counters.droppedNoDestination += 1
            return
        }
        // The slot has room for any answer the relay makes (4 KiB); the sender keeps a pointer
        // into it until the batch is flushed.
        _ = handleMessage(queryReceiver.slot(i), length: queryReceiver.payload(i).count, client: client, destination: destination,
                          reply: .udp, now: now)
    }

    // MARK: TCP intake

    /// A complete message read from a client connection (ClientTCP).
    func handleTCPMessage(_ message: UnsafeMutableRawBufferPointer, slot: Int, connection: ClientConnection, now: UInt64) -> ClientTCP.Next {
        let reply = ReplyPath.tcp(slot: Int32(slot), generation: connection.generation)
        guard message.count <= Worker.maxQueryLength else {
            // Longer than an in-flight slot (4 KiB; real queries are under 300 bytes plus
            // options): REFUSED with the question, and the connection goes on.
            guard case .query(let query) = QueryParser.classify(UnsafeRawBufferPointer(message)) else {
                return handleMessage(message, length: message.count, client: connection.client, destination: connection.origin, reply: reply, now: now)
            }
            counters.droppedOversize += 1
            answerScratch.baseAddress!.copyMemory(from: message.baseAddress!, byteCount: query.questionEnd)
            let length = ResponseBuilder.answer(rcode: .refused, in: answerScratch, questionEnd: query.questionEnd, withOPT: query.hasEDNS)
            respond(UnsafeRawBufferPointer(rebasing: answerScratch[0..<length]), action: .error, client: connection.client,
                    destination: connection.origin, reply: reply, receivedAt: now, inFlight: false)
            return .more
        }
        // Answers are built in the scratch: a frame in the reader must not grow in place.
        answerScratch.baseAddress!.copyMemory(from: message.baseAddress!, byteCount: message.count)
        return handleMessage(answerScratch, length: message.count, client: connection.client, destination: connection.origin, reply: reply, now: now)
    }

    // MARK: One path for both

    /// Classifies the message in the first `length` bytes of `buffer` and answers or forwards it.
    /// `buffer` must hold any answer the relay makes (4 KiB and more).
    @inline(__always)
    func handleMessage(_ buffer: UnsafeMutableRawBufferPointer, length: Int, client: Endpoint, destination: Endpoint, reply: ReplyPath,
                       now: UInt64) -> ClientTCP.Next {
        switch QueryParser.classify(UnsafeRawBufferPointer(rebasing: buffer[0..<length])) {
        case .drop(let why):
            // Over UDP it is dropped; over TCP the stream cannot be trusted past it.
            if reply.isTCP { return .closeNow }
            if why == .tooShort { counters.droppedShort += 1 } else { counters.droppedResponses += 1 }
            return .more
        case .notImplemented:
            counters.notImplemented += 1
            let size = ResponseBuilder.headerOnly(rcode: .notImplemented, in: buffer)
            respond(UnsafeRawBufferPointer(rebasing: buffer[0..<size]), action: .error, client: client, destination: destination,
                    reply: reply, receivedAt: now, inFlight: false)
            return .more
        case .formatError:
            // Say why; a TCP connection then closes (the stream cannot be trusted past it).
            counters.formatErrors += 1
            let size = ResponseBuilder.formatError(in: buffer)
            respond(UnsafeRawBufferPointer(rebasing: buffer[0..<size]), action: .error, client: client, destination: destination,
                    reply: reply, receivedAt: now, inFlight: false)
            return reply.isTCP ? .closeAfterAnswers : .more
        case .query(let query):
            if let limiter = settings.rateLimiter, limiter.admit(client.address, nowMilliseconds: now / 1_000_000) == .limit {
                return overLimit(query, in: buffer, client: client, destination: destination, reply: reply, now: now)
            }
            tapClientQuery(UnsafeRawBufferPointer(rebasing: buffer[0..<length]), client: client, destination: destination, tcp: reply.isTCP,
                           receivedAt: now)
            let facts = QueryFacts(query: query, client: client, destination: destination, transport: reply.isTCP ? .tcp : .udp)
            switch pipeline.decide(facts, in: buffer, queryLength: length, now: nowSeconds) {
            case .answered(let size, let source, let rule, let detail):
                account(source, detail: detail)
                respond(UnsafeRawBufferPointer(rebasing: buffer[0..<size]), action: source.logAction, client: client, destination: destination,
                        reply: reply, rule: rule, receivedAt: now, inFlight: false)
                if let prefetch = detail.prefetch { startPrefetch(pipeline.cache.prefetchQuery, facts: facts, forward: prefetch, now: now) }
            case .forward(let forward, let rule):
                // Over UDP the query is still in the buffer: only answers are written over it.
                forwardQuery(UnsafeRawBufferPointer(rebasing: buffer[0..<length]), facts: facts, forward: forward, rule: rule,
                             reply: reply, now: now)
            }
            return .more
        }
    }

    /// A query over its client's rate (`limits.client_qps`): counted, reported in the relay's log
    /// at most once per client per 10 s, and dropped, refused, or (UDP, `slip`) answered with TC=1
    /// so that a real client retries over TCP. Not in the query log: a flood would flood it.
    private func overLimit(_ query: ParsedQuery, in buffer: UnsafeMutableRawBufferPointer, client: Endpoint, destination: Endpoint,
                           reply: ReplyPath, now: UInt64) -> ClientTCP.Next {
        counters.rateLimited += 1
        let limiter = settings.rateLimiter!
        if limiter.shouldReport(client.address, nowMilliseconds: now / 1_000_000) {
            logger.warning("client \(limiter.prefix(of: client.address)) is over limits.client_qps (\(limiter.settings.qps)/s, burst \(limiter.settings.burst)): its queries are \(settings.rateLimitAction == .drop ? "dropped" : settings.rateLimitAction == .refused || reply.isTCP ? "refused" : "answered with TC=1") (counted as rate_limited; said again in 10 s at most)")
        }
        let length: Int
        switch settings.rateLimitAction {
        case .drop:
            return .more
        case .slip where !reply.isTCP:
            counters.rateLimitSlips += 1
            length = ResponseBuilder.answer(rcode: .noError, in: buffer, questionEnd: query.questionEnd, withOPT: query.hasEDNS)
            DNSHeader.setFlags(buffer.baseAddress!, DNSHeader.flags(buffer.baseAddress!) | DNSHeader.truncatedFlag)
        case .refused, .slip:
            length = ResponseBuilder.answer(rcode: .refused, in: buffer, questionEnd: query.questionEnd, withOPT: query.hasEDNS)
        }
        respond(UnsafeRawBufferPointer(rebasing: buffer[0..<length]), action: .dropped, client: client, destination: destination, reply: reply,
                receivedAt: now, inFlight: false, logged: false)
        return .more
    }

    /// Counts an answer the relay made.
    @inline(__always)
    private func account(_ source: AnswerSource, detail: AnswerDetail) {
        switch source {
        case .refusedLoop: counters.refusedLoops += 1
        case .zone: counters.localAnswers += 1
        case .blocked: counters.blocked += 1
        case .rewritten: counters.rewritten += 1
        case .rewrittenToZone:
            counters.rewritten += 1
            counters.localAnswers += 1
        case .cached: counters.answered += 1
        case .bypassed(let builtin):
            switch builtin {
            case .ddr: counters.bypassDDR += 1
            case .firefoxCanary: counters.bypassCanary += 1
            case .privateRelay: counters.bypassPrivateRelay += 1
            }
        }
        if detail.truncated { counters.truncatedForClients += 1 }
    }

    /// Admits a query the pipeline sends upstream and sends it (UDP: with this batch; TCP: at once).
    @inline(__always)
    private func forwardQuery(_ payload: UnsafeRawBufferPointer, facts: QueryFacts, forward: Forward, rule: RuleOrigin, reply: ReplyPath, now: UInt64) {
        if forward.aliasRule != nil { counters.rewritten += 1 }
        guard let index = admit(payload, facts: facts, forward: forward, rule: rule, now: now) else {
            if queryLog != nil && !reply.isTCP {
                // Dropped for overload: logged with the question and no answer.
                let buffer = UnsafeMutableRawBufferPointer(mutating: payload)
                let length = ResponseBuilder.answer(rcode: .serverFailure, in: buffer, questionEnd: facts.query.questionEnd, withOPT: false)
                queryLog?.recordAnswer(UnsafeRawBufferPointer(rebasing: buffer[0..<length]), proto: .udp, client: facts.client,
                                       server: facts.destination, action: .dropped, upstream: nil, rule: (RuleOrigin.none.list, 0), receivedAt: now)
            }
            return
        }
        counters.forwarded += 1
        inFlight[index].reply = reply
        if case .tcp(let slot, let generation) = reply {
            tcp.connection(Int(slot), generation: generation)?.inFlight += 1
            sendTCP(index, to: inFlight[index].server, now: now)
        } else {
            inFlight[index].clientPayloadSize = facts.query.udpPayloadSize
            _ = sendUDP(index, to: inFlight[index].server, now: now)
        }
    }

    /// Asks the upstream again for a popular entry about to expire; nobody waits for the answer.
    private func startPrefetch(_ query: UnsafeRawBufferPointer, facts: QueryFacts, forward: Forward, now: UInt64) {
        guard let index = admit(query, facts: facts, forward: forward, rule: .none, now: now) else { return }
        inFlight[index].prefetch = true
        counters.cachePrefetches += 1
        // Sent at once: a prefetch may come from a TCP query, outside any UDP batch.
        if sendUDP(index, to: inFlight[index].server, now: now) { upstreamBatchSent(now: now) }
    }

    // MARK: Answering

    /// Logs an answer, then sends it to the client the way it came: from a reply socket bound to
    /// the address it asked (UDP), or on its connection (TCP). `inFlight`: the query was admitted.
    @inline(__always)
    func respond(_ bytes: UnsafeRawBufferPointer, action: QueryLogRecord.Action, client: Endpoint, destination: Endpoint, reply: ReplyPath,
                 upstream: Endpoint? = nil, identity: IPPrefix? = nil, rule: RuleOrigin = .none, receivedAt: UInt64, inFlight: Bool,
                 logged: Bool = true) {
        if settings.metrics {
            answerTally.count(action: action, tcp: reply.isTCP, rcode: bytes[3])
            if inFlight {
                answerTally.forwarded.observe(nanoseconds: SystemInfo.monotonicNanoseconds() &- receivedAt)
            } else if reply.isTCP {
                answerTally.local.observe(nanoseconds: SystemInfo.monotonicNanoseconds() &- receivedAt)
            } else {
                // A UDP batch's local answers all arrived at once and leave at one sendmmsg: one
                // clock read for them all, after the flush (receiveQueries).
                localAnswersInBatch += 1
            }
        }
        if logged, let queryLog {
            queryLog.recordAnswer(bytes, proto: reply.isTCP ? .tcp : .udp, client: client, server: destination, action: action, upstream: upstream,
                                  rule: (rule.list, rule.line), receivedAt: receivedAt,
                                  local: !settings.localAddresses.isEmpty && settings.localAddresses.contains(client.address), identity: identity)
        }
        if logged {
            tapClientResponse(bytes, action: action, rule: rule, client: client, destination: destination, tcp: reply.isTCP, receivedAt: receivedAt)
        }
        switch reply {
        case .udp:
            guard let fd = replySockets.descriptor(for: destination) else {
                counters.replyFailures += 1
                if let why = replySockets.lastError { warn(why) }
                return
            }
            clientSender.enqueue(fd: fd, bytes: bytes, to: client)
        case .tcp(let slot, let generation):
            tcp.write(bytes, slot: Int(slot), generation: generation, answered: inFlight)
        }
    }
}

extension AnswerSource {
    /// How the query log shows an answer of this source.
    var logAction: QueryLogRecord.Action {
        switch self {
        case .refusedLoop: return .error
        case .zone: return .local
        case .blocked: return .blocked
        case .rewritten, .rewrittenToZone: return .rewritten
        case .cached: return .cached
        case .bypassed: return .blocked
        }
    }
}
