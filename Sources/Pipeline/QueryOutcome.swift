import Configuration
import RelayCore
import Rules

/// Where a rule was written: its list's index in `filters.lists` and its line. The query log
/// reads the text later, off the datapath.
public struct RuleOrigin: Equatable, Sendable {
    public var list: UInt16
    public var line: UInt32

    public init(list: UInt16, line: UInt32) {
        self.list = list
        self.line = line
    }

    /// No rule decided.
    public static let none = RuleOrigin(list: .max, line: 0)

    /// A bypass answer: the list `bypass`, the rule's code as its line.
    public init(_ builtin: BuiltinRule) {
        self.init(list: BuiltinRule.list, line: builtin.rawValue)
    }
}

/// Why the relay answered a query itself.
public enum AnswerSource: Equatable, Sendable {
    /// The query was addressed to the relay's own listener: forwarding it would loop (REFUSED).
    case refusedLoop
    /// A local zone holds the name (authoritative).
    case zone
    /// A blocking rule matched (answered as `filters.block_with` says).
    case blocked
    /// A hosts line or `$dnsrewrite` rule made the answer.
    case rewritten
    /// A `$dnsrewrite` CNAME whose target a local zone holds: the CNAME and the zone's answer.
    case rewrittenToZone
    /// The cache held a fresh answer.
    case cached
    /// A known way around the filter, closed by the relay's own answer (`bypass:`).
    case bypassed(BuiltinRule)
}

/// Where and how to ask upstream.
public struct Forward: Equatable, Sendable {
    public typealias Identity = Configuration.ClientIdentity

    /// The server for the first try.
    public var server: Endpoint
    /// Its index among the configured servers (retries go to the next); `Int(Int32.max)` for a
    /// server a rule or the client chose, which has no fallback.
    public var serverIndex: Int
    /// A `server=/d/` rule chose the server.
    public var byRule: Bool
    /// The cache key: the server part, and the clients the answer may go to.
    public var cacheKey: CacheKey
    /// What the first try's server learns of the client (`upstream.client_identity`).
    public var identity: Identity
    /// Whether the answer may be cached (not for aliases, whose answer depends on a rule).
    public var cacheable: Bool
    /// A `$dnsrewrite` CNAME: the rule (an index in the rule set) whose target is asked instead;
    /// the answer is the CNAME before what the upstream says (`QueryPipeline.aliasTarget`). An
    /// index, not the name, keeps the outcome a plain value that is copied without reference counting.
    public var aliasRule: UInt32?
    /// SVCB/HTTPS queries whose name's A or AAAA the rules decide apart: the address hints to
    /// take out of the answer (`SVCBHints.Keys` raw value; 0: none).
    public var stripHints: UInt8 = 0

    public init(server: Endpoint, serverIndex: Int, byRule: Bool, cacheKey: CacheKey, identity: Identity = .none, cacheable: Bool = true,
                aliasRule: UInt32? = nil) {
        self.server = server
        self.serverIndex = serverIndex
        self.byRule = byRule
        self.cacheKey = cacheKey
        self.identity = identity
        self.cacheable = cacheable
        self.aliasRule = aliasRule
    }
}

/// What the pipeline decided for one query. Everything the datapath, the counters and the query
/// log need travels here; nothing is left in side fields.
public enum QueryOutcome: Equatable, Sendable {
    /// The relay answered: `length` bytes over the query in the caller's buffer.
    case answered(length: Int, source: AnswerSource, rule: RuleOrigin, detail: AnswerDetail)
    /// Ask upstream.
    case forward(Forward, rule: RuleOrigin)

    /// The rule that decided, or `.none`.
    public var rule: RuleOrigin {
        switch self {
        case .answered(_, _, let rule, _), .forward(_, let rule): return rule
        }
    }
}

/// Side facts of an answer the relay made.
public struct AnswerDetail: Equatable, Sendable {
    /// The answer was cut to the client's size with TC=1.
    public var truncated = false
    /// A cache hit on an entry due for refresh: ask upstream too, nobody waits for that answer.
    public var prefetch: Forward?

    public init(truncated: Bool = false, prefetch: Forward? = nil) {
        self.truncated = truncated
        self.prefetch = prefetch
    }

    public static let plain = AnswerDetail()
}
