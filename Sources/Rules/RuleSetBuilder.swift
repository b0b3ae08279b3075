import Foundation
import RelayCore

/// A list that could not be read at all (missing, unreadable, not text): the reload keeps the
/// previous rule set.
public struct RuleLoadError: Error, Equatable, CustomStringConvertible {
    public var list: String
    public var reason: String
    public var description: String { "\(list): \(reason)" }
}

/// Builds a `RuleSet` from list files. Lines in the common shapes (`||name^`, `name`,
/// `0.0.0.0 name`, `*.name`, `address=/name/#`) take a byte-level path that allocates nothing per
/// line; everything else goes through `LineParser`.
public struct RuleSetBuilder {
    private var lists: [String] = []
    /// File → the name it is shown by (a URL list's cached copy → the URL).
    private var names: [String: String] = [:]
    private var reports: [ListReport] = []
    private var table = DomainTable(names: 1 << 16)
    private var extras: [RuleSet.Extras] = []
    private var regexes: [(regex: NameRegex, rule: UInt32)] = []
    private var badfilterKeys: Set<String> = []
    private var arenaLimit = DomainTable.maxArenaBytes

    public init() {}

    /// Loads every list; the first one that cannot be read fails the whole set. Files are read
    /// in chunks (`ListFile`), never whole.
    ///
    /// `mayBeAbsent`: files that load as empty lists when they do not exist (the cached copy
    /// of a URL list not downloaded yet), so that the other lists' indices stay where they are.
    /// `names`: what a file is called in reports, errors and `explain` (its path if absent).
    public static func load(paths: [String], mayBeAbsent: Set<String> = [], names: [String: String] = [:]) throws(RuleLoadError) -> RuleSet {
        try load(paths: paths, mayBeAbsent: mayBeAbsent, names: names, arenaLimit: DomainTable.maxArenaBytes)
    }

    /// `load`, with the names' arena limited to `arenaLimit` bytes (tests fill it).
    static func load(paths: [String], mayBeAbsent: Set<String> = [], names: [String: String] = [:], arenaLimit: Int) throws(RuleLoadError) -> RuleSet {
        var builder = RuleSetBuilder()
        builder.arenaLimit = arenaLimit
        builder.names = names
        var lines = 0
        var bytes = 0
        var withBadfilter: [String] = []
        let absent = Set(mayBeAbsent.filter { access($0, F_OK) != 0 })
        for path in paths where !absent.contains(path) {
            let survey = try ListFile(path: path).survey(needle: "badfilter")
            if let line = survey.nulLine {
                throw RuleLoadError(list: names[path] ?? path, reason: "is not a text file (a NUL byte on line \(line))")
            }
            lines += survey.lines + 1
            bytes += survey.bytes
            if survey.hasNeedle { withBadfilter.append(path) }
        }
        // Size everything once from the line count: growing by doubling would copy (and, at the
        // peak, hold twice) a million-rule table.
        builder.reserve(lines: lines, bytes: bytes)
        // $badfilter can disable a rule in any list, so collect those first.
        for path in withBadfilter { try builder.collectBadfilters(path) }
        for path in paths {
            if absent.contains(path) {
                builder.lists.append(path)
                builder.reports.append(ListReport(list: names[path] ?? path))
                continue
            }
            try builder.add(list: path)
            // A list where nothing could be read but something was rejected is broken, not empty
            // on purpose: refuse it, so that a reload keeps the rules in force.
            let report = builder.reports[builder.reports.count - 1]
            if report.rules == 0 && report.exceptions == 0, let first = report.rejected.first {
                throw RuleLoadError(list: names[path] ?? path, reason: "no rule could be read (\(report.rejected.count) lines rejected; line \(first.line): \(first.reason))")
            }
        }
        return builder.build()
    }

    mutating func reserve(lines: Int, bytes: Int) {
        // Labels take less than the lines' bytes: a name's suffixes are stored once for all names.
        table = DomainTable(names: lines, labelBytes: min(bytes / 2, arenaLimit), arenaLimit: arenaLimit)
    }

    public func build() -> RuleSet {
        RuleSet(lists: lists, listNames: lists.map { names[$0] ?? $0 }, reports: reports, table: table, extras: extras, regexes: regexes)
    }

    // MARK: Lines

    private mutating func collectBadfilters(_ path: String) throws(RuleLoadError) {
        try ListFile(path: path).forEachLine(maxLine: Self.maxLineLength) { line, _ in
            guard case .text(let bytes) = line, Self.contains(bytes, "badfilter"),
                  case .rules(let parsed) = LineParser.parse(Substring(String(decoding: bytes, as: UTF8.self))) else { return }
            for rule in parsed where rule.badfilter { badfilterKeys.insert(rule.key) }
        }
    }

    /// Reads one list into the set (the report is appended to `reports`).
    mutating func add(list path: String) throws(RuleLoadError) {
        let listIndex = UInt16(lists.count)
        lists.append(path)
        var report = ListReport(list: names[path] ?? path)
        var batch = InsertBatch()
        defer { batch.deallocate() }
        try ListFile(path: path).forEachLine(maxLine: Self.maxLineLength) { line, number in
            switch line {
            case .overlong(let length, let preview):
                report.rejected.append((number, String(decoding: preview, as: UTF8.self) + "…",
                                        "the line is \(length) bytes long; a rule is at most \(Self.maxLineLength)"))
            case .text(let bytes):
                if badfilterKeys.isEmpty, fastPath(bytes, line: number, into: &batch) {
                    if batch.isFull { insert(&batch, list: listIndex, report: &report) }
                    return
                }
                // Rules keep load order: what the fast path holds goes in first.
                insert(&batch, list: listIndex, report: &report)
                slowPath(bytes, list: listIndex, line: number, report: &report)
            }
        }
        insert(&batch, list: listIndex, report: &report)
        reports.append(report)
    }

    /// Inserts the batch's names as plain block rules, their slots fetched first.
    private mutating func insert(_ batch: inout InsertBatch, list: UInt16, report: inout ListReport) {
        guard !batch.items.isEmpty else { return }
        batch.withSlots { slots in
            for i in batch.items.indices { slots[i] = table.firstSlot(of: batch.name(i)) }
            table.fetch(UnsafeBufferPointer(rebasing: slots[0..<batch.items.count]))
        }
        for (i, item) in batch.items.enumerated() {
            if insert(batch.name(i), scope: item.scope, action: RuleSet.Code.block, important: false, extra: nil, list: list, line: item.line) {
                report.rules += 1
            } else {
                rejectFull(item.line, batch.name(i), report: &report)
            }
        }
        batch.removeAll()
    }

    /// The common shapes: a comment or blank line is skipped, a name goes into `batch`. False
    /// when the line needs the full parser.
    private func fastPath(_ line: UnsafeRawBufferPointer, line number: Int, into batch: inout InsertBatch) -> Bool {
        var lo = 0
        var hi = line.count
        while lo < hi && (line[lo] == 0x20 || line[lo] == 0x09) { lo += 1 }
        while hi > lo && (line[hi - 1] == 0x20 || line[hi - 1] == 0x09 || line[hi - 1] == 0x0d) { hi -= 1 }
        if lo == hi { return true }  // blank
        let first = line[lo]
        if first == UInt8(ascii: "!") || (first == UInt8(ascii: "#") && (hi - lo < 2 || line[lo + 1] != UInt8(ascii: "#"))) { return true }
        var scope = DomainScope.exact
        if hasPrefix(line, lo, hi, "||") && line[hi - 1] == UInt8(ascii: "^") {
            lo += 2; hi -= 1; scope = .subtree
        } else if hasPrefix(line, lo, hi, "0.0.0.0 ") || hasPrefix(line, lo, hi, "127.0.0.1 ") {
            lo += line[lo] == UInt8(ascii: "0") ? 8 : 10
            while lo < hi && line[lo] == 0x20 { lo += 1 }
        } else if hasPrefix(line, lo, hi, "*.") {
            lo += 2; scope = .below
        } else if hasPrefix(line, lo, hi, "address=/") && hi - lo > 11 && line[hi - 2] == UInt8(ascii: "/") && line[hi - 1] == UInt8(ascii: "#") {
            lo += 9; hi -= 2; scope = .subtree
        } else if hasPrefix(line, lo, hi, "local-zone: \"") {
            // Unbound: local-zone: "name." always_null (or another type that blocks).
            let nameStart = lo + 13
            var quote = nameStart
            while quote < hi && line[quote] != UInt8(ascii: "\"") { quote += 1 }
            guard quote < hi, quote > nameStart, line[quote - 1] == UInt8(ascii: "."),
                  Self.blocksInUnbound(UnsafeRawBufferPointer(rebasing: line[(quote + 1)..<hi])) else { return false }
            lo = nameStart; hi = quote - 1; scope = .subtree
        }
        // The name: letters, digits, '-', '_', '.', at most 253 bytes, labels 1...63.
        let length = hi - lo
        guard length > 0 && length <= 253 else { return false }
        let scratch = batch.nextName
        var label = 0
        for i in 0..<length {
            var c = line[lo + i]
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): c |= 0x20; label += 1
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"): label += 1
            case UInt8(ascii: "."): if label == 0 { return false }; label = 0
            default: return false
            }
            if label > 63 { return false }
            scratch[i] = c
        }
        guard label > 0 else { return false }
        // hosts files name the machine itself ("0.0.0.0 localhost", "127.0.0.1 localhost.localdomain"):
        // leave those to the parser. The only such names with a dot are checked by length first.
        if scope == .exact && (!memchr0(scratch, length) || Self.dottedSelfNames.contains { $0.count == length && $0.elementsEqual(scratch[0..<length]) }) {
            return false
        }
        batch.commit(length: length, scope: scope, line: number)
        return true
    }

    /// The names in `LineParser.hostsSelfNames` that have a dot (the fast path takes the others
    /// for rules otherwise).
    static let dottedSelfNames: [[UInt8]] = LineParser.hostsSelfNames.filter { $0.contains(".") }.map { Array($0.utf8) }

    /// Whether the text after an Unbound zone name is ` always_null` or another blocking type.
    private static func blocksInUnbound(_ rest: UnsafeRawBufferPointer) -> Bool {
        var lo = 0
        while lo < rest.count && (rest[lo] == 0x20 || rest[lo] == 0x09) { lo += 1 }
        guard lo > 0 else { return false }
        let type = rest[lo...]
        for candidate in unboundBlockingTypes where candidate.count == type.count && candidate.elementsEqual(type) { return true }
        return false
    }

    private static let unboundBlockingTypes: [[UInt8]] = ["always_null", "always_nxdomain", "always_refuse", "refuse", "static", "deny"].map { Array($0.utf8) }

    /// True when the name has a dot (single labels like `localhost` go to the full parser).
    private func memchr0(_ bytes: UnsafeMutableRawBufferPointer, _ length: Int) -> Bool {
        for i in 0..<length where bytes[i] == UInt8(ascii: ".") { return true }
        return false
    }

    private func hasPrefix(_ line: UnsafeRawBufferPointer, _ lo: Int, _ hi: Int, _ prefix: StaticString) -> Bool {
        let n = prefix.utf8CodeUnitCount
        guard hi - lo > n else { return false }
        let p = prefix.utf8Start
        for i in 0..<n where line[lo + i] != p[i] { return false }
        return true
    }

    /// Longest line read as a rule (a name is at most 253 bytes; adblock rules with many
    /// `$denyallow` names run longer, but not to this).
    static let maxLineLength = 8192

    private mutating func slowPath(_ line: UnsafeRawBufferPointer, list: UInt16, line number: Int, report: inout ListReport) {
        guard let text = String(validating: line, as: UTF8.self) else {
            report.rejected.append((number, String(decoding: line.prefix(60), as: UTF8.self), "not valid UTF-8 text"))
            return
        }
        switch LineParser.parse(Substring(text)) {
        case .comment:
            break
        case .ignored(let why):
            report.ignored += 1
            report.ignoredReasons[why, default: 0] += 1
        case .rejected(let why):
            report.rejected.append((number, String(text.trimmingWhitespace()), why))
        case .rules(let parsed):
            for rule in parsed {
                if rule.badfilter { continue }
                if !rule.key.isEmpty && badfilterKeys.contains(rule.key) {
                    report.disabled += 1
                    continue
                }
                guard add(rule, list: list, line: number) else {
                    rejectFull(number, line, report: &report)
                    return
                }
                switch rule.action {
                case .allow, .cancelDNSRewrite: report.exceptions += 1
                default: report.rules += 1
                }
            }
        }
    }

    /// Adds a parsed rule; false when the table's label space is full.
    private mutating func add(_ rule: ParsedRule, list: UInt16, line: Int) -> Bool {
        var x = RuleSet.Extras(line: UInt32(line), conditions: rule.conditions)
        let action: UInt8
        var needsExtra = !rule.conditions.isEmpty
        switch rule.action {
        case .block: action = RuleSet.Code.block
        case .allow: action = RuleSet.Code.allow
        case .rewrite(let address): action = RuleSet.Code.rewrite; x.rewrite = address; needsExtra = true
        case .dnsRewrite(let rewrite): action = RuleSet.Code.dnsRewrite; x.dnsRewrite = rewrite; needsExtra = true
        case .cancelDNSRewrite(let which): action = RuleSet.Code.cancelDNSRewrite; x.dnsRewrite = which; needsExtra = true
        case .forward(let server): action = RuleSet.Code.forward; x.forward = server; needsExtra = true
        }
        switch rule.pattern {
        case .domain(let name, let scope):
            var name = name
            return name.withUTF8 { insert(UnsafeRawBufferPointer($0), scope: scope, action: action, important: rule.important,
                                          extra: needsExtra ? x : nil, list: list, line: line) }
        case .regex(let source):
            guard let regex = try? NameRegex(source) else { return true }
            let compact = compactRule(scope: .subtree, action: action, important: rule.important, extra: needsExtra ? x : nil, list: list, line: line)
            regexes.append((regex, table.addLoose(compact)))
            return true
        }
    }

    private mutating func compactRule(scope: DomainScope, action: UInt8, important: Bool, extra: RuleSet.Extras?,
                                      list: UInt16, line: Int) -> RuleSet.CompactRule {
        var payload = UInt32(truncatingIfNeeded: line)
        if let extra {
            payload = UInt32(extras.count)
            extras.append(extra)
        }
        return RuleSet.CompactRule(payload: payload, list: list, scope: scope, action: action, important: important, hasExtra: extra != nil)
    }

    private mutating func insert(_ name: UnsafeRawBufferPointer, scope: DomainScope, action: UInt8, important: Bool,
                                 extra: RuleSet.Extras?, list: UInt16, line: Int) -> Bool {
        let rule = compactRule(scope: scope, action: action, important: important, extra: extra, list: list, line: line)
        guard table.insert(name, rule: rule) else {
            if extra != nil { extras.removeLast() }
            return false
        }
        return true
    }

    /// The table's label arena (64 MiB of distinct labels, several million names) is full: the
    /// line is reported, the rules already read stay.
    private func rejectFull(_ number: Int, _ line: UnsafeRawBufferPointer, report: inout ListReport) {
        report.rejected.append((number, String(decoding: line.prefix(60), as: UTF8.self),
                                "the rule table is full (\(DomainTable.maxArenaBytes >> 20) MiB of distinct labels, or no memory for more names): the line is not read"))
    }

    private static func contains(_ haystack: UnsafeRawBufferPointer, _ needle: StaticString) -> Bool {
        let n = needle.utf8CodeUnitCount
        guard haystack.count >= n else { return false }
        let p = needle.utf8Start
        var i = 0
        while i <= haystack.count - n {
            if haystack[i] == p[0] {
                var j = 1
                while j < n && haystack[i + j] == p[j] { j += 1 }
                if j == n { return true }
            }
            i += 1
        }
        return false
    }
}
