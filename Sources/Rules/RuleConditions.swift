import RelayCore

/// What narrows a rule beyond its name: `$dnstype`, `$denyallow` and `$client`. One value, kept
/// the same way by the parsed line, the compiled set and the rule `explain` shows.
public struct RuleConditions: Equatable, Sendable {
    /// `$dnstype=`: the rule applies only to these types (or, when `excludesTypes`, to all others).
    public var types: [UInt16] = []
    public var excludesTypes = false
    /// `$denyallow=`: names (and their subdomains) the rule does not apply to.
    public var denyAllow: [String] = []
    /// `$client=`: the rule applies only to these clients (none listed: every client), and
    /// never to the excluded ones (`~`).
    public var clients: [IPPrefix] = []
    public var excludedClients: [IPPrefix] = []

    public init() {}

    /// True when nothing narrows the rule.
    public var isEmpty: Bool { types.isEmpty && denyAllow.isEmpty && clients.isEmpty && excludedClients.isEmpty }

    /// Whether the rule applies to a query of `type` for `name` (lower-case dotted) from
    /// `client`; a rule for some clients does not apply when the client is unknown.
    @inline(__always)
    func allow(type: UInt16, name: UnsafeRawBufferPointer, client: IPAddress?) -> Bool {
        if !types.isEmpty && types.contains(type) == excludesTypes { return false }
        for domain in denyAllow where DomainName.isSubdomain(name, of: domain) { return false }
        if !clients.isEmpty || !excludedClients.isEmpty {
            guard let client else { return clients.isEmpty }
            if !clients.isEmpty && !clients.contains(where: { $0.contains(client) }) { return false }
            if excludedClients.contains(where: { $0.contains(client) }) { return false }
        }
        return true
    }
}
