import DNS
import RelayCore
import Rules

/// Filtering on the datapath: the rule set decides, and blocked or rewritten queries are answered
/// by the relay itself, from the address the client asked, without reaching the upstream.
extension Worker {
    /// Decides the query in `buffer` (its first `queryLength` bytes). When the relay answers it
    /// itself, writes the answer over the query in `buffer` and returns its length; nil means
    /// forward. No allocation: the name is written into a per-worker scratch buffer.
    @inline(__always)
    func filter(_ buffer: UnsafeMutableRawBufferPointer, queryLength: Int, query: ParsedQuery) -> Int? {
        guard !rules.isEmpty,
              let length = DomainName.fromWire(UnsafeRawBufferPointer(rebasing: buffer[0..<queryLength]), into: nameScratch)
        else { return nil }
        let match = rules.decide(name: UnsafeRawBufferPointer(rebasing: nameScratch[0..<length]), type: query.type)
        switch match.verdict {
        case .pass:
            return nil
        case .block:
            counters.blocked += 1
            switch settings.blockWith {
            case .nxdomain:
                return ResponseBuilder.answer(rcode: .nameError, in: buffer, questionEnd: query.questionEnd, withOPT: query.hasEDNS)
            case .refused:
                return ResponseBuilder.answer(rcode: .refused, in: buffer, questionEnd: query.questionEnd, withOPT: query.hasEDNS)
            case .nullIP:
                return addressAnswer(query.type == 28 ? .anyV6 : .anyV4, in: buffer, query: query)
            case .address(let address):
                return addressAnswer(address, in: buffer, query: query)
            }
        case .rewrite(let address):
            counters.rewritten += 1
            return addressAnswer(address, in: buffer, query: query)
        }
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

    /// Hands a new rule set to this worker; it switches at its next loop turn.
    func install(_ rules: RuleSet) {
        ruleMailbox.withLock { $0 = rules }
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
    }
}
