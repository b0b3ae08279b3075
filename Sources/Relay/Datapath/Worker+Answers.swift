import DNS
import Pipeline
import QueryLog
import RelayCore
import Rules

/// Answers to queries in flight: checked, cached, given the client's ID and question, and sent
/// back the way the query came (`respond`); or SERVFAIL (a stale answer when there is one).
extension Worker {
    /// Hands an accepted answer to the client that asked, from the address it asked, with its own
    /// ID and question bytes; a UDP client gets TC=1 when the answer exceeds its buffer. Frees the
    /// entry. `answer` is the writable buffer holding the answer in its first `length` bytes.
    @inline(__always)
    func deliver(_ index: Int, answer: UnsafeMutableRawBufferPointer, length: Int) {
        tapForwarderResponse(index, answer: UnsafeRawBufferPointer(rebasing: answer[0..<length]))
        // A malformed answer is not passed on or cached (the client gets SERVFAIL, or a stale
        // answer); TTLs are clamped in place so the first answer and the cached copy agree.
        guard AnswerCheck.check(UnsafeMutableRawBufferPointer(rebasing: answer[0..<length]), questionEnd: inFlight[index].questionEnd,
                                maxTTL: settings.maxTTL) else {
            counters.upstreamMalformed += 1
            failQuery(index)
            return
        }
        if settings.metrics { upstreamTally.count(.answers, slot: upstreamTally.slot(serverIndex: inFlight[index].serverIndex)) }
        if inFlight[index].aliasQuestionEnd > 0 {
            deliverAlias(index, answer: answer, length: length)
            return
        }
        // What was added for the upstream comes out; the answer is kept for whom it is valid.
        var (length, key) = identityAnswer(index, answer: answer, length: length)
        if inFlight[index].stripHints != 0 {
            // The rules answer this name's A or AAAA: the HTTPS answer must not carry those hints.
            length = SVCBHints.strip(SVCBHints.Keys(rawValue: inFlight[index].stripHints), in: answer, length: length) ?? length
        }
        let base = answer.baseAddress!
        if DNSHeader.rcode(base) == .serverFailure, let stale = staleAnswer(index) {
            // RFC 8767: an upstream that fails is an upstream that does not answer.
            if inFlight[index].prefetch { inFlight.release(index); return }
            counters.answered += 1
            send(index, answer: inFlight.buffer(index), length: stale, action: .cached)
            return
        }
        if inFlight[index].cacheable, let key {
            pipeline.cache.remember(UnsafeRawBufferPointer(rebasing: answer[0..<length]), questionEnd: inFlight[index].questionEnd,
                                    flags: inFlight[index].cacheFlags, key: key, now: nowSeconds)
        }
        if inFlight[index].prefetch {
            inFlight.release(index)
            return
        }
        let end = inFlight[index].questionEnd
        (base + DNSHeader.size).copyMemory(from: inFlight.query(index).baseAddress! + DNSHeader.size, byteCount: end - DNSHeader.size)
        counters.answered += 1
        send(index, answer: answer, length: length, action: inFlight[index].cacheable ? .allowed : .rewritten)
    }

    /// The answer for the target of an alias becomes the client's: its question, the CNAME, the
    /// target's records. An answer that does not parse becomes SERVFAIL.
    private func deliverAlias(_ index: Int, answer: UnsafeMutableRawBufferPointer, length answerLength: Int) {
        let buffer = inFlight.buffer(index)
        let aside = UnsafeRawBufferPointer(rebasing: buffer[InFlightTable.aliasOffset..<(InFlightTable.aliasOffset + inFlight[index].aliasQuestionEnd)])
        let names = pipeline.name.bytes
        guard let length = DomainName.fromWire(inFlight.query(index), into: names),
              let composed = AliasAnswer.compose(original: aside, target: String(decoding: names[0..<length], as: UTF8.self),
                                                 ttl: settings.answerTTL, upstream: UnsafeRawBufferPointer(rebasing: answer[0..<answerLength]),
                                                 withOPT: inFlight[index].hasEDNS)
        else {
            failQuery(index)
            return
        }
        counters.answered += 1
        if inFlight[index].reply.isTCP {
            // A TCP client's answer is copied into its connection's output at once.
            var bytes = composed
            bytes.withUnsafeMutableBytes { send(index, answer: $0, length: $0.count, action: .rewritten) }
            return
        }
        // A UDP client's answer must outlive this call (the sender keeps a pointer until it
        // flushes): the answer's own buffer, or the entry's when that is too small (a TCP frame).
        let target = composed.count <= answer.count ? answer : inFlight.buffer(index)
        let copied = min(composed.count, target.count)
        composed.withUnsafeBytes { target.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: copied) }
        var size = copied
        if copied < composed.count {
            // Larger than any UDP client takes anyway: TC=1, and the client asks over TCP.
            size = ResponseBuilder.truncate(in: UnsafeMutableRawBufferPointer(rebasing: target[0..<copied]),
                                            withOPT: inFlight[index].hasEDNS) ?? copied
        }
        send(index, answer: target, length: size, action: .rewritten)
    }

    /// Sends a finished answer to the entry's client (its ID goes in here, and a UDP client's
    /// size limit is applied), logs it, and frees the entry.
    private func send(_ index: Int, answer: UnsafeMutableRawBufferPointer, length: Int, action: QueryLogRecord.Action) {
        let entry = inFlight[index]
        DNSHeader.setID(answer.baseAddress!, entry.clientID)
        var size = length
        if !entry.reply.isTCP && length > entry.clientPayloadSize {
            counters.truncatedForClients += 1
            size = ResponseBuilder.truncate(in: UnsafeMutableRawBufferPointer(rebasing: answer[0..<length]), withOPT: entry.hasEDNS) ?? length
        }
        respond(UnsafeRawBufferPointer(rebasing: answer[0..<size]), action: action, client: entry.client, destination: entry.originalDestination,
                reply: entry.reply, upstream: action == .cached ? nil : entry.server, identity: action == .cached ? nil : loggedIdentity(index),
                rule: entry.rule, receivedAt: entry.receivedAt, inFlight: true)
        inFlight.release(index)
    }

    /// When the upstream failed: an expired answer still inside the serve-stale window, written
    /// over the entry's query (it is not needed any more), or nil.
    private func staleAnswer(_ index: Int) -> Int? {
        guard inFlight[index].cacheable else { return nil }
        return pipeline.cache.stale(inFlight.buffer(index), questionEnd: inFlight[index].questionEnd, flags: inFlight[index].cacheFlags,
                                    key: inFlight[index].cacheKey, now: nowSeconds)
    }

    /// Answers SERVFAIL (built in place in the stored query), or a stale answer, and frees the entry.
    func failQuery(_ index: Int) {
        if inFlight[index].prefetch {
            pipeline.cache.prefetchFailed(inFlight.query(index), questionEnd: inFlight[index].questionEnd, flags: inFlight[index].cacheFlags,
                                          key: inFlight[index].cacheKey)
            inFlight.release(index)
            return
        }
        if let length = staleAnswer(index) {
            counters.answered += 1
            send(index, answer: inFlight.buffer(index), length: length, action: .cached)
            return
        }
        counters.serverFailures += 1
        let buffer = inFlight.buffer(index)
        if inFlight[index].aliasQuestionEnd > 0 {
            // The client asked for the alias, not the target: answer its own question.
            buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + InFlightTable.aliasOffset, byteCount: inFlight[index].aliasQuestionEnd)
            inFlight[index].questionEnd = inFlight[index].aliasQuestionEnd
            inFlight[index].aliasQuestionEnd = 0
        }
        let length = ResponseBuilder.answer(rcode: .serverFailure, in: buffer, questionEnd: inFlight[index].questionEnd,
                                            withOPT: inFlight[index].hasEDNS)
        send(index, answer: buffer, length: length, action: .error)
    }
}
