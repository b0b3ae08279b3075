import RelayCore
import Rules

/// The rules as a selector: which rule matches a name for this client, and what it says. The
/// answers a verdict leads to are built apart, by `RuleAnswers` (selectors apart from actions).
public struct RuleStage: Sendable {
    /// The rules in force; shared read-only between workers, replaced whole on reload.
    public var rules: RuleSet
    /// Which lists apply to which clients (`filters.clients`).
    public var policy: ClientPolicy

    public init(rules: RuleSet, policy: ClientPolicy) {
        self.rules = rules
        self.policy = policy
    }

    /// The lists that apply to `client` (all when no policy names it, or no client is known).
    @inline(__always)
    public func lists(for client: IPAddress?) -> ListMask {
        guard let client, !policy.isEmpty else { return .all }
        return policy.lists(for: client)
    }

    /// The verdict for `name` (lower-case dotted) of type `type` asked by `client`.
    @inline(__always)
    public func match(name: UnsafeRawBufferPointer, type: UInt16, client: IPAddress?) -> RuleSet.Match {
        guard !rules.isEmpty else { return RuleSet.Match(verdict: .pass, rule: nil) }
        return rules.decide(name: name, type: type, client: client, lists: lists(for: client))
    }

    /// Where the deciding rule of `match` was written.
    @inline(__always)
    public func origin(of match: RuleSet.Match) -> RuleOrigin {
        guard let index = match.rule else { return .none }
        let origin = rules.origin(of: index)
        return RuleOrigin(list: origin.list, line: origin.line)
    }

    /// Whether a verdict stops a QUIC flow whose SNI is the name: blocks, and the local answers
    /// lists use to block (a hosts line's 0.0.0.0 or ::, an NXDOMAIN or REFUSED `$dnsrewrite`).
    public static func blocksQUIC(_ verdict: RuleSet.Match.Verdict) -> Bool {
        switch verdict {
        case .block: return true
        case .rewrite(let address): return address.isUnspecified || address.isLoopback
        case .dnsRewrite(.rcode(let code)): return code == 3 || code == 5
        case .pass, .dnsRewrite: return false
        }
    }
}
