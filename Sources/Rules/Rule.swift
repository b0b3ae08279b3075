import RelayCore

/// What a matching rule asks for.
public enum RuleAction: Equatable, Sendable {
    /// Answer with the configured block response.
    case block
    /// An exception (`@@`): let the query through even if a block rule matches.
    case allow
    /// Answer locally with this address (a hosts line with a real address).
    case rewrite(IPAddress)
    /// `$dnsrewrite`: answer with this response code, record or alias. Beats blocks and
    /// exceptions, as in AdGuard Home.
    case dnsRewrite(DNSRewrite)
    /// `@@…$dnsrewrite`: cancels every `$dnsrewrite` rule for the name (nil) or the ones with
    /// this value.
    case cancelDNSRewrite(DNSRewrite?)
    /// dnsmasq `server=/name/address`: forward the name (and below) to this server; nil is
    /// `server=/name/#`, the configured upstream.
    case forward(Endpoint?)
}

/// Which names a domain rule covers.
public enum DomainScope: UInt8, Sendable {
    /// Exactly the name (hosts lines, plain domain lists, `|name^`).
    case exact
    /// The name and every name below it (`||name^`, dnsmasq `address=/name/`, Unbound local-zone).
    case subtree
    /// Only names below it (`*.name`, `.name`).
    case below
}

/// One compiled rule: what it matches, what it does, and where it came from.
public struct Rule: Equatable, Sendable {
    public var action: RuleAction
    /// `$important`: beats exceptions that are not important themselves.
    public var important = false
    /// `$dnstype`, `$denyallow`, `$client`.
    public var conditions = RuleConditions()
    /// Where it came from.
    public var source: RuleSource

    public init(action: RuleAction, source: RuleSource) {
        self.action = action
        self.source = source
    }
}

/// A rule's origin, for `explain`, `check` and the query log: list, line, text.
public struct RuleSource: Equatable, Sendable, CustomStringConvertible {
    public var list: String
    public var line: Int
    public var text: String

    public init(list: String, line: Int, text: String) {
        self.list = list
        self.line = line
        self.text = text
    }

    public var description: String { "\(list):\(line): \(text)" }
}
