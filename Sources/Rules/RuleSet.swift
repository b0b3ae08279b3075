import Foundation
import RelayCore

/// Every rule of every list, compiled for lookups on the datapath.
///
/// Immutable once built, so workers share it without locks; a reload builds a new one and swaps
/// it in. A rule costs 16 bytes plus its name once in the table's arena; the line's text is not
/// kept but read back from the list when `explain` shows it.
public final class RuleSet: @unchecked Sendable {
    /// Action codes of `CompactRule.action`.
    enum Code {
        static let block: UInt8 = 0
        static let allow: UInt8 = 1
        static let rewrite: UInt8 = 2
        static let dnsRewrite: UInt8 = 3
        static let cancelDNSRewrite: UInt8 = 4
        static let forward: UInt8 = 5
    }

    struct CompactRule {
        var list: UInt16
        var scope: DomainScope
        /// One of `Code`.
        var action: UInt8
        var important: Bool
        var line: UInt32
        /// Index into `extras`, or .max.
        var extra: UInt32
        /// Next rule for the same name, or .max.
        var next: UInt32
    }

    /// What few rules carry beyond a name and an action.
    struct Extras {
        var rewrite: IPAddress?
        var conditions = RuleConditions()
        /// `$dnsrewrite` (what to answer) or its exception (which to cancel; nil: all).
        var dnsRewrite: DNSRewrite?
        /// `server=/d/…`: nil means the configured upstream.
        var forward: Endpoint?
    }

    /// The lists, in configuration order.
    public let lists: [String]
    /// What loading each list found.
    public let reports: [ListReport]
    var table: DomainTable
    var rules: [CompactRule]
    var extras: [Extras]
    var regexes: [(regex: NameRegex, rule: UInt32)]

    init(lists: [String], reports: [ListReport], table: DomainTable, rules: [CompactRule], extras: [Extras],
         regexes: [(regex: NameRegex, rule: UInt32)]) {
        self.lists = lists
        self.reports = reports
        self.table = table
        self.rules = rules
        self.extras = extras
        self.regexes = regexes
        hasTypeConditions = extras.contains { !$0.conditions.types.isEmpty }
    }

    /// Whether any rule applies to some query types only (`$dnstype`): only then can a name's A
    /// and AAAA be decided apart from its HTTPS record (SVCB hints, QueryPipeline).
    public let hasTypeConditions: Bool

    /// An empty set: everything passes.
    public static let empty = RuleSet(lists: [], reports: [], table: DomainTable(capacity: 1), rules: [], extras: [], regexes: [])

    public var ruleCount: Int { rules.count }
    public var isEmpty: Bool { rules.isEmpty }
    /// Approximate bytes the compiled set holds.
    public var footprint: Int { table.footprint + rules.capacity * MemoryLayout<CompactRule>.stride + extras.count * 64 }

    /// The outcome of a lookup on the datapath: no allocation, rules as indices.
    public struct Match: Equatable, Sendable {
        public enum Verdict: Equatable, Sendable {
            case pass
            case block
            /// A hosts-style local answer: this address for its family, empty NOERROR otherwise.
            case rewrite(IPAddress)
            /// A `$dnsrewrite` answer. For `.record`, every active record rule of the query's
            /// type goes into the answer (`forEachRewriteRecord`).
            case dnsRewrite(DNSRewrite)
        }
        public var verdict: Verdict
        /// The deciding rule (`rule(at:)`), or nil when none matched.
        public var rule: UInt32?
        /// Where to forward a query that passes: a `server=/d/` upstream; nil is the configured one.
        public var upstream: Endpoint?

        public init(verdict: Verdict, rule: UInt32?, upstream: Endpoint? = nil) {
            self.verdict = verdict
            self.rule = rule
            self.upstream = upstream
        }
    }

    /// Precedence among blocks, exceptions and hosts answers, as AdGuard Home documents it: an
    /// important exception beats an important block, which beats an exception, which beats a
    /// block. A local answer (rewrite) beats a plain block of the same rank; among equals the
    /// first rule loaded wins. `$dnsrewrite` rules stand above all of these.
    @inline(__always)
    private func rank(_ r: CompactRule) -> Int {
        let base = r.action == Code.allow ? 2 : 0
        return (r.important ? 4 : 0) + base + (r.action == Code.rewrite ? 1 : 0)
    }

    /// Decides for `name` (lower-case dotted, no trailing dot), query type `type`, asked by
    /// `client` (nil: rules limited by `$client` do not apply), with the lists in `lists`.
    @inline(__always)
    public func decide(name: UnsafeRawBufferPointer, type: UInt16, client: IPAddress? = nil, lists: ListMask = .all) -> Match {
        if rules.isEmpty { return Match(verdict: .pass, rule: nil) }
        var best: UInt32 = .max
        var bestRank = -1
        var terminal: UInt32 = .max  // first CNAME or error-code $dnsrewrite
        var record: UInt32 = .max  // first NOERROR $dnsrewrite
        var cancelAll = false
        var cancelSome = false
        var forward: UInt32 = .max
        visit(name: name, type: type, client: client, lists: lists) { index in
            let r = rules[Int(index)]
            switch r.action {
            case Code.dnsRewrite:
                if isTerminal(r) { terminal = min(terminal, index) } else { record = min(record, index) }
            case Code.cancelDNSRewrite:
                if extras[Int(r.extra)].dnsRewrite == nil { cancelAll = true } else { cancelSome = true }
            case Code.forward:
                if forward == .max { forward = index }  // the longest name comes first
            default:
                let rk = rank(r)
                if rk > bestRank || (rk == bestRank && index < best) {
                    best = index
                    bestRank = rk
                }
            }
        }
        let upstream = forward == .max ? nil : extras[Int(rules[Int(forward)].extra)].forward
        if !cancelAll && (terminal != .max || record != .max) {
            if cancelSome {
                terminal = .max
                record = .max
                visit(name: name, type: type, client: client, lists: lists) { index in
                    let r = rules[Int(index)]
                    guard r.action == Code.dnsRewrite, !isCancelled(r, name: name, type: type, client: client, lists: lists) else { return }
                    if isTerminal(r) { terminal = min(terminal, index) } else { record = min(record, index) }
                }
            }
            let chosen = terminal != .max ? terminal : record
            if chosen != .max {
                return Match(verdict: .dnsRewrite(extras[Int(rules[Int(chosen)].extra)].dnsRewrite!), rule: chosen, upstream: upstream)
            }
        }
        guard best != .max else { return Match(verdict: .pass, rule: forward == .max ? nil : forward, upstream: upstream) }
        switch rules[Int(best)].action {
        case Code.allow: return Match(verdict: .pass, rule: best, upstream: upstream)
        case Code.rewrite: return Match(verdict: .rewrite(extras[Int(rules[Int(best)].extra)].rewrite!), rule: best)
        default: return Match(verdict: .block, rule: best)
        }
    }

    /// Calls `body` with the type and wire data of every active `$dnsrewrite` record of type
    /// `type` for the name, in load order (the answer to a `.dnsRewrite(.record)` verdict).
    public func forEachRewriteRecord(name: UnsafeRawBufferPointer, type: UInt16, client: IPAddress? = nil, lists: ListMask = .all,
                                     _ body: (UInt16, [UInt8]) -> Void) {
        visit(name: name, type: type, client: client, lists: lists) { index in
            let r = rules[Int(index)]
            guard r.action == Code.dnsRewrite, case .record(let recordType, let rdata, _)? = extras[Int(r.extra)].dnsRewrite,
                  recordType == type, !isCancelled(r, name: name, type: type, client: client, lists: lists) else { return }
            body(recordType, rdata)
        }
    }

    @inline(__always)
    private func isTerminal(_ r: CompactRule) -> Bool {
        switch extras[Int(r.extra)].dnsRewrite {
        case .cname?: return true
        case .rcode(let code)?: return code != 0
        default: return false
        }
    }

    /// Whether an `@@…$dnsrewrite` exception cancels rewrite rule `r` for this query.
    private func isCancelled(_ r: CompactRule, name: UnsafeRawBufferPointer, type: UInt16, client: IPAddress?, lists: ListMask) -> Bool {
        let value = extras[Int(r.extra)].dnsRewrite
        var cancelled = false
        visit(name: name, type: type, client: client, lists: lists) { index in
            let e = rules[Int(index)]
            if e.action == Code.cancelDNSRewrite {
                let which = extras[Int(e.extra)].dnsRewrite
                if which == nil || which == value { cancelled = true }
            }
        }
        return cancelled
    }

    /// Calls `body` with every rule that applies to the query.
    @inline(__always)
    func visit(name: UnsafeRawBufferPointer, type: UInt16, client: IPAddress?, lists: ListMask, _ body: (UInt32) -> Void) {
        var start = 0
        while start < name.count {
            if let entry = table.find(UnsafeRawBufferPointer(rebasing: name[start...])) {
                var index = table.heads[entry]
                while index != .max {
                    let r = rules[Int(index)]
                    let scoped = r.scope == .subtree || (r.scope == .exact ? start == 0 : start > 0)
                    if scoped && lists.contains(r.list) && applies(r, type: type, name: name, client: client) { body(index) }
                    index = r.next
                }
            }
            // Next suffix: after the next dot.
            while start < name.count && name[start] != UInt8(ascii: ".") { start += 1 }
            start += 1
        }
        if !regexes.isEmpty {
            for (regex, index) in regexes where regex.matches(name) {
                let r = rules[Int(index)]
                if lists.contains(r.list) && applies(r, type: type, name: name, client: client) { body(index) }
            }
        }
    }

    @inline(__always)
    private func applies(_ r: CompactRule, type: UInt16, name: UnsafeRawBufferPointer, client: IPAddress?) -> Bool {
        guard r.extra != .max else { return true }
        return extras[Int(r.extra)].conditions.allow(type: type, name: name, client: client)
    }

    /// Where the rule at `index` was written: its list's index in `lists` and its line. For the
    /// query log, which reads the text later, off the datapath (`RuleText`).
    @inline(__always)
    public func origin(of index: UInt32) -> (list: UInt16, line: UInt32) {
        let r = rules[Int(index)]
        return (r.list, r.line)
    }

    /// The target of the `$dnsrewrite` CNAME rule at `index`, or nil for any other rule.
    public func aliasTarget(of index: UInt32) -> String? {
        let r = rules[Int(index)]
        guard r.action == Code.dnsRewrite, r.extra != .max, case .cname(let target)? = extras[Int(r.extra)].dnsRewrite else { return nil }
        return target
    }

    /// The full rule at `index`, with its source line read back from its list.
    public func rule(at index: UInt32) -> Rule {
        let r = rules[Int(index)]
        let list = lists[Int(r.list)]
        let x = r.extra == .max ? Extras() : extras[Int(r.extra)]
        let action: RuleAction
        switch r.action {
        case Code.allow: action = .allow
        case Code.rewrite: action = .rewrite(x.rewrite!)
        case Code.dnsRewrite: action = .dnsRewrite(x.dnsRewrite!)
        case Code.cancelDNSRewrite: action = .cancelDNSRewrite(x.dnsRewrite)
        case Code.forward: action = .forward(x.forward)
        default: action = .block
        }
        var rule = Rule(action: action, source: RuleSource(list: list, line: Int(r.line), text: Self.line(Int(r.line), of: list) ?? ""))
        rule.important = r.important
        rule.conditions = x.conditions
        return rule
    }

    /// `tproxy-relay explain`: the decision and every rule that matched, strongest first
    /// (`$dnsrewrite` rules, then by precedence; per-domain upstreams last).
    public func explain(name: String, type: UInt16, client: IPAddress? = nil, lists: ListMask = .all) -> (decision: Match, matches: [Rule]) {
        let normalized = DomainName.normalize(name) ?? name.lowercased()
        var bytes = Array(normalized.utf8)
        return bytes.withUnsafeMutableBytes { raw in
            let view = UnsafeRawBufferPointer(raw)
            var found: [UInt32] = []
            visit(name: view, type: type, client: client, lists: lists) { found.append($0) }
            let decision = decide(name: view, type: type, client: client, lists: lists)
            func order(_ i: UInt32) -> Int {
                if decision.rule == i { return 100 }
                switch rules[Int(i)].action {
                case Code.dnsRewrite, Code.cancelDNSRewrite: return 50
                case Code.forward: return -1
                default: return rank(rules[Int(i)])
                }
            }
            let ordered = found.sorted { (order($0), -Int($0)) > (order($1), -Int($1)) }
            return (decision, ordered.map { rule(at: $0) })
        }
    }

    static func line(_ number: Int, of path: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        var current = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            current += 1
            if current == number { return String(line.trimmingWhitespace()) }
        }
        return nil
    }
}

/// Which lists apply to a query: one bit per list in configuration order (`filters.clients`).
/// Lists past the 64th always apply; the configuration refuses per-client policies over them.
public struct ListMask: Equatable, Sendable {
    public var bits: UInt64
    public init(bits: UInt64) { self.bits = bits }
    public static let all = ListMask(bits: ~0)

    /// The mask with exactly the lists at `indices`.
    public init(lists indices: [Int]) {
        bits = indices.reduce(0) { $0 | (1 << UInt64($1)) }
    }

    @inline(__always)
    func contains(_ list: UInt16) -> Bool { list >= 64 || (bits >> UInt64(list)) & 1 == 1 }
}

/// What loading one list found: rules, exceptions, ignored and rejected lines.
public struct ListReport: Equatable, Sendable {
    public var list: String
    public var rules = 0
    public var exceptions = 0
    public var ignored = 0
    /// Ignored lines grouped by reason, with a count each.
    public var ignoredReasons: [String: Int] = [:]
    /// Every rejected line with its number and why.
    public var rejected: [(line: Int, text: String, reason: String)] = []
    /// Rules switched off by `$badfilter`.
    public var disabled = 0

    public init(list: String) { self.list = list }

    public static func == (a: ListReport, b: ListReport) -> Bool {
        a.list == b.list && a.rules == b.rules && a.exceptions == b.exceptions && a.ignored == b.ignored
            && a.rejected.map(\.line) == b.rejected.map(\.line) && a.disabled == b.disabled
    }
}
