import Foundation
import RelayCore

/// Every rule of every list, compiled for lookups on the datapath.
///
/// Immutable once built, so workers share it without locks; a reload builds a new one and swaps
/// it in. A name costs a 16-byte entry per label not shared with another name (its first rule
/// inline, `DomainTable`), a further rule 12 bytes; the line's text is not kept but read back
/// from the list when `explain` shows it.
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

    typealias CompactRule = DomainTable.CompactRule

    /// What few rules carry beyond a name and an action (their line too: `CompactRule.payload`
    /// then holds the index here).
    struct Extras {
        var line: UInt32 = 0
        var rewrite: IPAddress?
        var conditions = RuleConditions()
        /// `$dnsrewrite` (what to answer) or its exception (which to cancel; nil: all).
        var dnsRewrite: DNSRewrite?
        /// `server=/d/…`: nil means the configured upstream.
        var forward: Endpoint?
    }

    /// The lists' files, in configuration order.
    public let lists: [String]
    /// What each list is called where a person reads it (reports, `explain`): its file, or the
    /// URL a downloaded copy came from.
    public let listNames: [String]
    /// What loading each list found.
    public let reports: [ListReport]
    let table: DomainTable
    let extras: [Extras]
    let regexes: [(regex: NameRegex, rule: UInt32)]

    init(lists: [String], listNames: [String]? = nil, reports: [ListReport], table: DomainTable, extras: [Extras], regexes: [(regex: NameRegex, rule: UInt32)]) {
        self.lists = lists
        self.listNames = listNames ?? lists
        self.reports = reports
        self.table = table
        self.extras = extras
        self.regexes = regexes
        hasTypeConditions = extras.contains { !$0.conditions.types.isEmpty }
    }

    /// Whether any rule applies to some query types only (`$dnstype`): only then can a name's A
    /// and AAAA be decided apart from its HTTPS record (SVCB hints, QueryPipeline).
    public let hasTypeConditions: Bool

    /// An empty set: everything passes.
    public static let empty = RuleSet(lists: [], reports: [], table: DomainTable(), extras: [], regexes: [])

    public var ruleCount: Int { table.ruleCount }
    /// Names in the table: the rules' names and the suffixes between them and the root.
    public var nameCount: Int { table.count }
    public var isEmpty: Bool { table.ruleCount == 0 }
    /// Approximate bytes the compiled set holds.
    public var footprint: Int { table.footprint + extras.count * MemoryLayout<Extras>.stride }

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

    /// Load order: list, then line (a rule's id says where it is stored, not when it was read).
    @inline(__always)
    private func order(_ r: CompactRule) -> UInt64 { UInt64(r.list) << 32 | UInt64(line(of: r)) }

    @inline(__always)
    private func line(of r: CompactRule) -> UInt32 { r.hasExtra ? extras[Int(r.payload)].line : r.payload }

    @inline(__always)
    private func extra(_ r: CompactRule) -> Extras? { r.hasExtra ? extras[Int(r.payload)] : nil }

    /// Decides for `name` (lower-case dotted, no trailing dot), query type `type`, asked by
    /// `client` (nil: rules limited by `$client` do not apply), with the lists in `lists`.
    @inline(__always)
    public func decide(name: UnsafeRawBufferPointer, type: UInt16, client: IPAddress? = nil, lists: ListMask = .all) -> Match {
        if table.ruleCount == 0 { return Match(verdict: .pass, rule: nil) }
        var best: UInt32 = .max
        var bestRank = -1
        var bestOrder: UInt64 = .max
        // The first (in load order) CNAME or error-code $dnsrewrite, and NOERROR one.
        var terminal: (id: UInt32, order: UInt64) = (.max, .max)
        var record: (id: UInt32, order: UInt64) = (.max, .max)
        var cancelAll = false
        var cancelSome = false
        var forward: UInt32 = .max
        var forwardRule: CompactRule?
        visit(name: name, type: type, client: client, lists: lists) { id, r in
            switch r.action {
            case Code.dnsRewrite:
                let o = order(r)
                if isTerminal(r) { if o < terminal.order { terminal = (id, o) } } else if o < record.order { record = (id, o) }
            case Code.cancelDNSRewrite:
                if extras[Int(r.payload)].dnsRewrite == nil { cancelAll = true } else { cancelSome = true }
            case Code.forward:
                if forward == .max { forward = id; forwardRule = r }  // the longest name comes first
            default:
                let rk = rank(r)
                if rk > bestRank || (rk == bestRank && order(r) < bestOrder) {
                    best = id
                    bestRank = rk
                    bestOrder = order(r)
                }
            }
        }
        let upstream = forwardRule.flatMap { extra($0)?.forward }
        if !cancelAll && (terminal.id != .max || record.id != .max) {
            if cancelSome {
                terminal = (.max, .max)
                record = (.max, .max)
                visit(name: name, type: type, client: client, lists: lists) { id, r in
                    guard r.action == Code.dnsRewrite, !isCancelled(r, name: name, type: type, client: client, lists: lists) else { return }
                    let o = order(r)
                    if isTerminal(r) { if o < terminal.order { terminal = (id, o) } } else if o < record.order { record = (id, o) }
                }
            }
            let chosen = terminal.id != .max ? terminal.id : record.id
            if chosen != .max {
                return Match(verdict: .dnsRewrite(extra(rule(chosen))!.dnsRewrite!), rule: chosen, upstream: upstream)
            }
        }
        guard best != .max else { return Match(verdict: .pass, rule: forward == .max ? nil : forward, upstream: upstream) }
        let decided = rule(best)
        switch decided.action {
        case Code.allow: return Match(verdict: .pass, rule: best, upstream: upstream)
        case Code.rewrite: return Match(verdict: .rewrite(extra(decided)!.rewrite!), rule: best)
        default: return Match(verdict: .block, rule: best)
        }
    }

    @inline(__always)
    private func rule(_ id: UInt32) -> CompactRule { table.rule(id) }

    /// Calls `body` with the type and wire data of every active `$dnsrewrite` record of type
    /// `type` for the name, longest name first, each name's in load order (the answer to a
    /// `.dnsRewrite(.record)` verdict).
    public func forEachRewriteRecord(name: UnsafeRawBufferPointer, type: UInt16, client: IPAddress? = nil, lists: ListMask = .all,
                                     _ body: (UInt16, [UInt8]) -> Void) {
        visit(name: name, type: type, client: client, lists: lists) { _, r in
            guard r.action == Code.dnsRewrite, case .record(let recordType, let rdata, _)? = extra(r)?.dnsRewrite,
                  recordType == type, !isCancelled(r, name: name, type: type, client: client, lists: lists) else { return }
            body(recordType, rdata)
        }
    }

    @inline(__always)
    private func isTerminal(_ r: CompactRule) -> Bool {
        switch extra(r)?.dnsRewrite {
        case .cname?: return true
        case .rcode(let code)?: return code != 0
        default: return false
        }
    }

    /// Whether an `@@…$dnsrewrite` exception cancels rewrite rule `r` for this query.
    private func isCancelled(_ r: CompactRule, name: UnsafeRawBufferPointer, type: UInt16, client: IPAddress?, lists: ListMask) -> Bool {
        let value = extra(r)?.dnsRewrite
        var cancelled = false
        visit(name: name, type: type, client: client, lists: lists) { _, e in
            if e.action == Code.cancelDNSRewrite {
                let which = extra(e)?.dnsRewrite
                if which == nil || which == value { cancelled = true }
            }
        }
        return cancelled
    }

    /// Calls `body` with the id and rule of every rule that applies to the query: the name's
    /// own and its parents' (longest first, each name's in load order), then regex rules.
    @inline(__always)
    func visit(name: UnsafeRawBufferPointer, type: UInt16, client: IPAddress?, lists: ListMask, _ body: (UInt32, CompactRule) -> Void) {
        table.forEachSuffix(of: name) { entry, start in
            table.forEachRule(of: entry) { id, r in
                let scoped = r.scope == .subtree || (r.scope == .exact ? start == 0 : start > 0)
                if scoped && lists.contains(r.list) && applies(r, type: type, name: name, client: client) { body(id, r) }
            }
        }
        if !regexes.isEmpty {
            for (regex, id) in regexes where regex.matches(name) {
                let r = rule(id)
                if lists.contains(r.list) && applies(r, type: type, name: name, client: client) { body(id, r) }
            }
        }
    }

    @inline(__always)
    private func applies(_ r: CompactRule, type: UInt16, name: UnsafeRawBufferPointer, client: IPAddress?) -> Bool {
        guard r.hasExtra else { return true }
        return extras[Int(r.payload)].conditions.allow(type: type, name: name, client: client)
    }

    /// Where the rule `id` was written: its list's index in `lists` and its line. For the
    /// query log, which reads the text later, off the datapath (`RuleText`).
    @inline(__always)
    public func origin(of id: UInt32) -> (list: UInt16, line: UInt32) {
        let r = rule(id)
        return (r.list, line(of: r))
    }

    /// The target of the `$dnsrewrite` CNAME rule `id`, or nil for any other rule.
    public func aliasTarget(of id: UInt32) -> String? {
        let r = rule(id)
        guard r.action == Code.dnsRewrite, case .cname(let target)? = extra(r)?.dnsRewrite else { return nil }
        return target
    }

    /// The full rule `id`, with its source line read back from its list.
    public func rule(at id: UInt32) -> Rule {
        let r = rule(id)
        let list = lists[Int(r.list)]
        let x = extra(r) ?? Extras()
        let action: RuleAction
        switch r.action {
        case Code.allow: action = .allow
        case Code.rewrite: action = .rewrite(x.rewrite!)
        case Code.dnsRewrite: action = .dnsRewrite(x.dnsRewrite!)
        case Code.cancelDNSRewrite: action = .cancelDNSRewrite(x.dnsRewrite)
        case Code.forward: action = .forward(x.forward)
        default: action = .block
        }
        let number = Int(line(of: r))
        var rule = Rule(action: action, source: RuleSource(list: listNames[Int(r.list)], line: number, text: Self.line(number, of: list) ?? ""))
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
            var found: [(id: UInt32, rule: CompactRule)] = []
            visit(name: view, type: type, client: client, lists: lists) { found.append(($0, $1)) }
            let decision = decide(name: view, type: type, client: client, lists: lists)
            func strength(_ f: (id: UInt32, rule: CompactRule)) -> Int {
                if decision.rule == f.id { return 100 }
                switch f.rule.action {
                case Code.dnsRewrite, Code.cancelDNSRewrite: return 50
                case Code.forward: return -1
                default: return rank(f.rule)
                }
            }
            let ordered = found.sorted { a, b in
                let (sa, sb) = (strength(a), strength(b))
                return sa != sb ? sa > sb : order(a.rule) < order(b.rule)
            }
            return (decision, ordered.map { rule(at: $0.id) })
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
