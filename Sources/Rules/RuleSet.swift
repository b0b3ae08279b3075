import Foundation
import RelayCore

/// Every rule of every list, compiled for lookups on the datapath.
///
/// Immutable once built, so workers share it without locks; a reload builds a new one and swaps
/// it in. A rule costs 16 bytes plus its name once in the table's arena; the line's text is not
/// kept but read back from the list when `explain` shows it.
public final class RuleSet: @unchecked Sendable {
    struct CompactRule {
        var list: UInt16
        var scope: DomainScope
        /// 0 block, 1 allow, 2 rewrite.
        var action: UInt8
        var important: Bool
        var line: UInt32
        /// Index into `extras`, or .max.
        var extra: UInt32
        /// Next rule for the same name, or .max.
        var next: UInt32
    }

    struct Extras {
        var rewrite: IPAddress?
        var types: [UInt16] = []
        var excludesTypes = false
        var denyAllow: [String] = []
    }

    /// The lists, in configuration order.
    public let lists: [String]
    /// What loading each list found.
    public let reports: [ListReport]
    var table: DomainTable
    var rules: [CompactRule]
    var extras: [Extras]
    var regexes: [(regex: Regex<AnyRegexOutput>, rule: UInt32)]

    init(lists: [String], reports: [ListReport], table: DomainTable, rules: [CompactRule], extras: [Extras],
         regexes: [(regex: Regex<AnyRegexOutput>, rule: UInt32)]) {
        self.lists = lists
        self.reports = reports
        self.table = table
        self.rules = rules
        self.extras = extras
        self.regexes = regexes
    }

    /// An empty set: everything passes.
    public static let empty = RuleSet(lists: [], reports: [], table: DomainTable(capacity: 1), rules: [], extras: [], regexes: [])

    public var ruleCount: Int { rules.count }
    public var isEmpty: Bool { rules.isEmpty }
    /// Approximate bytes the compiled set holds.
    public var footprint: Int { table.footprint + rules.capacity * MemoryLayout<CompactRule>.stride + extras.count * 64 }

    /// The outcome of a lookup on the datapath: no allocation, the rule as an index.
    public struct Match: Equatable, Sendable {
        public enum Verdict: Equatable, Sendable {
            case pass
            case block
            case rewrite(IPAddress)
        }
        public var verdict: Verdict
        /// The deciding rule (`rule(at:)`), or nil when none matched.
        public var rule: UInt32?
    }

    /// Precedence, as AdGuard Home documents it: an important exception beats an important
    /// block, which beats an exception, which beats a block. A local answer (rewrite) beats a
    /// plain block of the same rank; among equals the first rule loaded wins.
    @inline(__always)
    private func rank(_ r: CompactRule) -> Int {
        let base = r.action == 1 ? 2 : 0
        return (r.important ? 4 : 0) + base + (r.action == 2 ? 1 : 0)
    }

    /// Decides for `name` (lower-case dotted, no trailing dot) and query type `type`.
    @inline(__always)
    public func decide(name: UnsafeRawBufferPointer, type: UInt16) -> Match {
        if rules.isEmpty { return Match(verdict: .pass, rule: nil) }
        var best: UInt32 = .max
        var bestRank = -1
        visit(name: name, type: type) { index in
            let r = rank(rules[Int(index)])
            if r > bestRank || (r == bestRank && index < best) {
                best = index
                bestRank = r
            }
        }
        guard best != .max else { return Match(verdict: .pass, rule: nil) }
        switch rules[Int(best)].action {
        case 1: return Match(verdict: .pass, rule: best)
        case 2: return Match(verdict: .rewrite(extras[Int(rules[Int(best)].extra)].rewrite!), rule: best)
        default: return Match(verdict: .block, rule: best)
        }
    }

    /// Calls `body` with every rule that applies to the query.
    @inline(__always)
    func visit(name: UnsafeRawBufferPointer, type: UInt16, _ body: (UInt32) -> Void) {
        var start = 0
        while start < name.count {
            if let entry = table.find(UnsafeRawBufferPointer(rebasing: name[start...])) {
                var index = table.heads[entry]
                while index != .max {
                    let r = rules[Int(index)]
                    let scoped = r.scope == .subtree || (r.scope == .exact ? start == 0 : start > 0)
                    if scoped && applies(r, type: type, name: name) { body(index) }
                    index = r.next
                }
            }
            // Next suffix: after the next dot.
            while start < name.count && name[start] != UInt8(ascii: ".") { start += 1 }
            start += 1
        }
        if !regexes.isEmpty {
            let text = String(decoding: name, as: UTF8.self)
            for (regex, index) in regexes where (try? regex.firstMatch(in: text)) != nil {
                if applies(rules[Int(index)], type: type, name: name) { body(index) }
            }
        }
    }

    @inline(__always)
    private func applies(_ r: CompactRule, type: UInt16, name: UnsafeRawBufferPointer) -> Bool {
        guard r.extra != .max else { return true }
        let x = extras[Int(r.extra)]
        if !x.types.isEmpty && x.types.contains(type) == x.excludesTypes { return false }
        for domain in x.denyAllow where DomainName.isSubdomain(name, of: domain) { return false }
        return true
    }

    /// The full rule at `index`, with its source line read back from its list.
    public func rule(at index: UInt32) -> Rule {
        let r = rules[Int(index)]
        let list = lists[Int(r.list)]
        let action: RuleAction = r.action == 1 ? .allow : r.action == 2 ? .rewrite(extras[Int(r.extra)].rewrite!) : .block
        var rule = Rule(action: action, source: RuleSource(list: list, line: Int(r.line), text: Self.line(Int(r.line), of: list) ?? ""))
        rule.important = r.important
        if r.extra != .max {
            rule.types = extras[Int(r.extra)].types
            rule.excludesTypes = extras[Int(r.extra)].excludesTypes
            rule.denyAllow = extras[Int(r.extra)].denyAllow
        }
        return rule
    }

    /// `tproxy-relay explain`: the decision and every rule that matched, strongest first.
    public func explain(name: String, type: UInt16) -> (decision: Match, matches: [Rule]) {
        let normalized = DomainName.normalize(name) ?? name.lowercased()
        var bytes = Array(normalized.utf8)
        return bytes.withUnsafeMutableBytes { raw in
            let view = UnsafeRawBufferPointer(raw)
            var found: [UInt32] = []
            visit(name: view, type: type) { found.append($0) }
            let ordered = found.sorted { (rank(rules[Int($0)]), -Int($0)) > (rank(rules[Int($1)]), -Int($1)) }
            return (decide(name: view, type: type), ordered.map { rule(at: $0) })
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
