import DNS
import RelayCore
import Rules
import Zones

/// What the rules make of a query.
enum FilterOutcome {
    /// The relay answered; the answer (this many bytes) is in the query's buffer.
    case answered(Int)
    /// Forward it: to this server (a `server=/d/` rule), or to the usual upstream when nil.
    case forward(Endpoint?)
    /// `$dnsrewrite` made the name an alias: ask the upstream for `target` and answer with the
    /// CNAME followed by what it says.
    case alias(String)
}

/// Filtering on the datapath: the rule set decides, and blocked or rewritten queries are answered
/// by the relay itself, from the address the client asked, without reaching the upstream.
extension Worker {
    /// Decides the query in `buffer` (its first `queryLength` bytes) from `client`. An answer the
    /// relay makes is written over the query in `buffer`, at most `limit` bytes (the client's UDP
    /// size; longer answers go out with TC=1). No allocation: the name goes into a per-worker
    /// scratch buffer.
    @inline(__always)
    func filter(_ buffer: UnsafeMutableRawBufferPointer, queryLength: Int, query: ParsedQuery, client: IPAddress, limit: Int) -> FilterOutcome {
        decidedRule = .max
        guard !rules.isEmpty,
              let length = DomainName.fromWire(UnsafeRawBufferPointer(rebasing: buffer[0..<queryLength]), into: nameScratch)
        else { return .forward(nil) }
        let name = UnsafeRawBufferPointer(rebasing: nameScratch[0..<length])
        let lists = settings.clientPolicy.isEmpty ? ListMask.all : settings.clientPolicy.lists(for: client)
        let match = rules.decide(name: name, type: query.type, client: client, lists: lists)
        decidedRule = match.rule ?? .max
        decidedAction = .rewritten
        switch match.verdict {
        case .pass:
            return .forward(match.upstream)
        case .block:
            counters.blocked += 1
            decidedAction = .blocked
            switch settings.blockWith {
            case .nxdomain:
                return .answered(ResponseBuilder.answer(rcode: .nameError, in: buffer, questionEnd: query.questionEnd, withOPT: query.hasEDNS))
            case .refused:
                return .answered(ResponseBuilder.answer(rcode: .refused, in: buffer, questionEnd: query.questionEnd, withOPT: query.hasEDNS))
            case .nullIP:
                return .answered(addressAnswer(query.type == 28 ? .anyV6 : .anyV4, in: buffer, query: query))
            case .address(let address):
                return .answered(addressAnswer(address, in: buffer, query: query))
            }
        case .rewrite(let address):
            counters.rewritten += 1
            return .answered(addressAnswer(address, in: buffer, query: query))
        case .dnsRewrite(let rewrite):
            counters.rewritten += 1
            switch rewrite {
            case .rcode(let code) where code != 0:
                return .answered(ResponseBuilder.answer(rcode: ResponseCode(rawValue: UInt16(code)), in: buffer,
                                                        questionEnd: query.questionEnd, withOPT: query.hasEDNS))
            case .cname(let target):
                return .alias(target)
            default:
                return .answered(recordsAnswer(name: name, in: buffer, query: query, client: client, lists: lists, limit: limit))
            }
        }
    }

    /// A NOERROR answer with every `$dnsrewrite` record of the query's type (none: NODATA).
    private func recordsAnswer(name: UnsafeRawBufferPointer, in buffer: UnsafeMutableRawBufferPointer, query: ParsedQuery,
                               client: IPAddress, lists: ListMask, limit: Int) -> Int {
        let room = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<min(buffer.count, max(limit, 512))])
        var offset = ResponseBuilder.beginAnswer(rcode: .noError, in: room, questionEnd: query.questionEnd)
        var truncated = false
        let ttl = settings.answerTTL
        rules.forEachRewriteRecord(name: name, type: query.type, client: client, lists: lists) { type, rdata in
            guard !truncated else { return }
            let next = rdata.withUnsafeBytes { ResponseBuilder.appendRecord(in: room, at: offset, type: type, ttl: ttl, rdata: $0) }
            if let next { offset = next } else { truncated = true }
        }
        if truncated {
            return ResponseBuilder.truncate(in: room, withOPT: query.hasEDNS) ?? query.questionEnd
        }
        return ResponseBuilder.finishAnswer(in: room, at: offset, withOPT: query.hasEDNS)
    }

    /// An A or AAAA answer with `address` when the query asks for its family; otherwise an empty
    /// NOERROR (the name exists, that type does not).
    @inline(__always)
    private func addressAnswer(_ address: IPAddress, in buffer: UnsafeMutableRawBufferPointer, query: ParsedQuery) -> Int {
        switch (address, query.type) {
        case (.v4(let a), 1):
            return withUnsafeBytes(of: a.rawValue) {
                ResponseBuilder.addressAnswer(in: buffer, questionEnd: query.questionEnd, address: $0, ttl: settings.answerTTL, withOPT: query.hasEDNS)
            }
        case (.v6(let a), 28):
            return withUnsafeBytes(of: (a.high, a.low)) {
                ResponseBuilder.addressAnswer(in: buffer, questionEnd: query.questionEnd, address: $0, ttl: settings.answerTTL, withOPT: query.hasEDNS)
            }
        default:
            return ResponseBuilder.answer(rcode: .noError, in: buffer, questionEnd: query.questionEnd, withOPT: query.hasEDNS)
        }
    }

    /// The authoritative answer of a local zone for the query in `buffer`, written over it (at
    /// most `limit` bytes, else TC=1); nil when no local zone holds the name. Finding the zone
    /// allocates nothing; building an answer does (zone names are the LAN's few local names).
    @inline(__always)
    func localAnswer(_ buffer: UnsafeMutableRawBufferPointer, queryLength: Int, query: ParsedQuery, limit: Int) -> Int? {
        guard !zones.isEmpty,
              let length = DomainName.fromWire(UnsafeRawBufferPointer(rebasing: buffer[0..<queryLength]), into: nameScratch),
              let zone = zones.zoneIndex(for: UnsafeRawBufferPointer(rebasing: nameScratch[0..<length]))
        else { return nil }
        let name = String(decoding: nameScratch[0..<length], as: UTF8.self)
        let answer = zones.answer(zone: zone, name: name, type: query.type)
        counters.localAnswers += 1
        return answer.write(into: buffer, questionEnd: query.questionEnd, withOPT: query.hasEDNS, limit: limit)
    }

    /// A `$dnsrewrite` alias whose target lies in a local zone: answered here, `name CNAME
    /// target` and the zone's answer for the target (not authoritative: a rule made the alias).
    /// nil when the target is outside every local zone (it is then asked upstream).
    func localAliasAnswer(_ buffer: UnsafeMutableRawBufferPointer, query: ParsedQuery, target: String, limit: Int) -> Int? {
        guard !zones.isEmpty else { return nil }
        var bytes = Array(target.utf8)
        guard let zone = bytes.withUnsafeMutableBytes({ zones.zoneIndex(for: UnsafeRawBufferPointer($0)) }) else { return nil }
        let answer = zones.answer(zone: zone, name: target, type: query.type).behindAlias(target: target, ttl: settings.answerTTL)
        counters.localAnswers += 1
        return answer.write(into: buffer, questionEnd: query.questionEnd, withOPT: query.hasEDNS, limit: limit, authoritative: false)
    }

    /// Hands a new rule set to this worker; it switches at its next loop turn.
    func install(_ rules: RuleSet) {
        ruleMailbox.withLock { $0 = rules }
        rulesChanged.store(true, ordering: .releasing)
        wakeUp()
    }

    /// Hands new local zones to this worker; it switches at its next loop turn.
    func install(_ zones: LocalZones) {
        zoneMailbox.withLock { $0 = zones }
        rulesChanged.store(true, ordering: .releasing)
        wakeUp()
    }

    /// Takes a rule set posted by `install`, if any (called once per loop turn).
    @inline(__always)
    func takeNewRules() {
        guard rulesChanged.exchange(false, ordering: .acquiring) else { return }
        if let fresh = ruleMailbox.withLock({ mailbox -> RuleSet? in
            let taken = mailbox
            mailbox = nil
            return taken
        }) {
            rules = fresh
        }
        if let fresh = zoneMailbox.withLock({ mailbox -> LocalZones? in
            let taken = mailbox
            mailbox = nil
            return taken
        }) {
            zones = fresh
        }
    }
}
