import Foundation
import Testing
@testable import Rules

/// The label tree under the rules: growth, chains, depth and size limits, hostile lookups.
@Suite struct DomainTableTests {
    static func rule(line: UInt32, list: UInt16 = 0, scope: DomainScope = .subtree) -> DomainTable.CompactRule {
        DomainTable.CompactRule(payload: line, list: list, scope: scope, action: RuleSet.Code.block, important: false, hasExtra: false)
    }

    /// The rules a name's suffixes hold, longest suffix first: (suffix start, line).
    static func lookup(_ table: DomainTable, _ name: String) -> [(Int, UInt32)] {
        var found: [(Int, UInt32)] = []
        let bytes = Array(name.utf8)
        bytes.withUnsafeBytes { raw in
            table.forEachSuffix(of: raw) { entry, start in
                table.forEachRule(of: entry) { _, r in found.append((start, r.payload)) }
            }
        }
        return found
    }

    static func insert(_ table: DomainTable, _ name: String, line: UInt32) -> Bool {
        Array(name.utf8).withUnsafeBytes { table.insert($0, rule: rule(line: line)) }
    }

    @Test func growingKeepsEveryNameAndItsParents() throws {
        // Sized for 16 names, given 5,000 in 100 parents under 3 top-level labels: it grows
        // several times, and every entry's parent must follow it.
        let table = DomainTable(names: 16)
        var names: [String] = []
        for i in 0..<5_000 { names.append("h\(i).p\(i % 100).tld\(i % 3)") }
        for (i, name) in names.enumerated() { #expect(Self.insert(table, name, line: UInt32(i + 1))) }
        #expect(table.ruleCount == 5_000)
        #expect(table.count == 5_000 + 300 + 3)  // p0…p99 each under all three (100 and 3 share no factor)
        for (i, name) in names.enumerated() {
            let found = Self.lookup(table, "www." + name)
            #expect(found.count == 1 && found[0].0 == 4 && found[0].1 == UInt32(i + 1), "\(name): \(found)")
        }
        // The tree spells the names back, label by label up to the root.
        let bytes = Array(names[4_321].utf8)
        var last: UInt32?
        bytes.withUnsafeBytes { raw in table.forEachSuffix(of: raw) { entry, start in if start == 0 { last = entry } } }
        #expect(table.name(try #require(last)) == names[4_321])
        #expect(Self.lookup(table, "h1.p2.tld1").isEmpty)  // each label exists, not under these parents
        #expect(Self.lookup(table, "p1.tld1").isEmpty)  // a parent with no rule of its own
    }

    @Test func aNameWithManyRulesKeepsThemInLoadOrder() {
        let table = DomainTable()
        for line in [7, 3, 9, 1] as [UInt32] { #expect(Self.insert(table, "ads.test", line: line)) }
        #expect(Self.insert(table, "test", line: 11))
        #expect(Self.insert(table, "x.ads.test", line: 12))
        #expect(Self.lookup(table, "x.ads.test").map(\.1) == [12, 7, 3, 9, 1, 11])
        #expect(Self.lookup(table, "ads.test").map(\.0) == [0, 0, 0, 0, 4])
    }

    @Test func longestNamesAndLabelsFit() {
        let table = DomainTable()
        let label63 = String(repeating: "a", count: 63)
        let long = [label63, label63, label63, String(repeating: "b", count: 61)].joined(separator: ".")  // 253 bytes
        let deep = Array(repeating: "x", count: 127).joined(separator: ".")  // 127 labels, 253 bytes
        #expect(long.utf8.count == 253 && deep.utf8.count == 253)
        #expect(Self.insert(table, long, line: 1))
        #expect(Self.insert(table, deep, line: 2))
        #expect(Self.lookup(table, long).map(\.1) == [1])
        #expect(Self.lookup(table, deep).map(\.1) == [2])
        #expect(Self.lookup(table, "x." + deep).map(\.1) == [2])
    }

    /// `explain` takes raw text: empty labels, a label over 63 bytes, hundreds of labels and
    /// non-ASCII bytes find nothing and stop; nothing traps.
    @Test(arguments: ["", ".", "..", "a..test", "test.", ".test", String(repeating: "z", count: 64) + ".test",
                      Array(repeating: "x", count: 300).joined(separator: "."), "ä.test", "\u{0}.test"])
    func hostileTextFindsNothingElse(_ text: String) {
        let table = DomainTable()
        #expect(Self.insert(table, "test", line: 1))
        #expect(Self.insert(table, "x", line: 2))
        let found = Self.lookup(table, text)
        // Only a text ending in a real label ("…test", "…x") finds that label's rule.
        #expect(found.allSatisfy { $0.1 == 1 || $0.1 == 2 })
        if !text.hasSuffix("test") && !text.hasSuffix("x") { #expect(found.isEmpty) }
    }

    @Test func aFullArenaRefusesNewLabelsButKeepsWhatItHas() {
        let table = DomainTable(names: 16, arenaLimit: 20)
        #expect(Self.insert(table, "abcdef.test", line: 1))  // 10 bytes
        #expect(Self.insert(table, "ghijkl.test", line: 2))  // 16
        #expect(!Self.insert(table, "mnopqrs.test", line: 3))  // 23 > 20
        #expect(Self.insert(table, "test", line: 4))  // no new label
        #expect(Self.lookup(table, "abcdef.test").map(\.1) == [1, 4])
        #expect(Self.lookup(table, "ghijkl.test").map(\.1) == [2, 4])
        #expect(Self.lookup(table, "mnopqrs.test").map(\.1) == [4])
    }

    @Test func aFullTableIsReportedWithFileAndLineAndTheRestStays() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("table-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("big.txt").path
        try ["||one.test^", "||two.test^", "||three-is-too-long.test^", "@@||one.test^", "||xyz.one.test^$important"]
            .joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let set = try RuleSetBuilder.load(paths: [path], arenaLimit: 12)
        let report = try #require(set.reports.first)
        #expect(report.rejected.map(\.line) == [3, 5])
        #expect(report.rejected.first?.reason.contains("the rule table is full") == true)
        #expect(report.rules == 2 && report.exceptions == 1)
        func verdict(_ name: String) -> RuleSet.Match.Verdict {
            Array(name.utf8).withUnsafeBytes { set.decide(name: $0, type: 1).verdict }
        }
        #expect(verdict("two.test") == .block)
        #expect(verdict("one.test") == .pass)
        #expect(verdict("three-is-too-long.test") == .pass)
    }

    /// Lines of one name in two lists and in both paths of the builder (plain lines are held in
    /// a batch, others parsed at once) still decide in load order.
    @Test func loadOrderHoldsAcrossTheBatchAndTheParser() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("order-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = dir.appendingPathComponent("a.txt").path
        let second = dir.appendingPathComponent("b.txt").path
        // 40 plain lines (more than a batch) around a hosts answer for the same name.
        var lines = (0..<20).map { "||n\($0).test^" }
        lines += ["10.53.9.9 same.test", "||same.test^"]
        lines += (20..<40).map { "||n\($0).test^" }
        try lines.joined(separator: "\n").write(toFile: first, atomically: true, encoding: .utf8)
        try "0.0.0.0 same.test\n10.53.9.8 same.test\n".write(toFile: second, atomically: true, encoding: .utf8)
        let set = try RuleSetBuilder.load(paths: [first, second])
        let (decision, matches) = set.explain(name: "same.test", type: 1)
        #expect(decision.verdict == .rewrite(.init("10.53.9.9")!))
        #expect(matches.map { "\(($0.source.list as NSString).lastPathComponent):\($0.source.line)" } == ["a.txt:21", "b.txt:2", "a.txt:22", "b.txt:1"])
        #expect(set.ruleCount == 44)
    }
}

/// `RulePrefetch` works out slots from a query's wire bytes: they must be the slots the lookup
/// of its lower-case text probes first, and hostile names must give none, never a trap.
@Suite struct RulePrefetchTests {
    static func wire(_ labels: [[UInt8]], header: [UInt8] = Array(repeating: 0, count: 12)) -> [UInt8] {
        var out = header
        for label in labels { out.append(UInt8(label.count)); out += label }
        out.append(0)
        return out + [0, 1, 0, 1]
    }

    @Test func wireSlotsAreTheTextLookupsFirstSlots() {
        let table = DomainTable(names: 1000)
        #expect(DomainTableTests.insert(table, "ads.example.test", line: 1))
        let message = Self.wire([Array("WWW".utf8), Array("Ads".utf8), Array("EXAMPLE".utf8), Array("test".utf8)])
        var slots = [Int](repeating: -1, count: 8)
        let n = message.withUnsafeBytes { m in slots.withUnsafeMutableBufferPointer { table.slots(ofQuestionIn: m, into: $0) } }
        #expect(n == 4)
        // Shortest suffix first, each the slot `firstSlot(of:)` gives its lower-case text.
        for (i, suffix) in ["test", "example.test", "ads.example.test", "www.ads.example.test"].enumerated() {
            #expect(slots[i] >> 14 == Array(suffix.utf8).withUnsafeBytes { table.firstSlot(of: $0) }, "\(suffix)")
            #expect(slots[i] >> 8 & 63 == suffix.split(separator: ".").first!.utf8.count)
        }
        // The entries that exist sit in those slots (the table is nearly empty: no collisions).
        let found = DomainTableTests.lookup(table, "www.ads.example.test")
        #expect(found.map(\.1) == [1])
    }

    @Test func aTopLevelLabelNoRuleGoesThroughGivesNoSlots() {
        let table = DomainTable(names: 1000)
        #expect(DomainTableTests.insert(table, "ads.example.test", line: 1))
        var slots = [Int](repeating: -1, count: 8)
        let message = Self.wire([Array("ads".utf8), Array("example".utf8), Array("lan".utf8)])
        let n = message.withUnsafeBytes { m in slots.withUnsafeMutableBufferPointer { table.slots(ofQuestionIn: m, into: $0) } }
        #expect(n == 0)
    }

    @Test(arguments: [
        [UInt8](repeating: 0, count: 12),  // no question
        [UInt8](repeating: 0, count: 12) + [0xc0, 0x0c],  // a compression pointer
        [UInt8](repeating: 0, count: 12) + [64] + [UInt8](repeating: 0x61, count: 64) + [0],  // a 64-byte label
        [UInt8](repeating: 0, count: 12) + [5, 0x61, 0x61],  // cut short
        [UInt8](repeating: 0, count: 12) + Array(repeating: [1, 0x61] as [UInt8], count: 140).flatMap { $0 } + [0],  // 280 bytes
    ])
    func hostileNamesGiveNoSlots(_ message: [UInt8]) {
        let table = DomainTable()
        var slots = [Int](repeating: -1, count: 8)
        let n = message.withUnsafeBytes { m in slots.withUnsafeMutableBufferPointer { table.slots(ofQuestionIn: m, into: $0) } }
        #expect(n == 0)
    }

    @Test func aDeepNameGivesItsDeepestEightAndABatchStopsAtItsSize() throws {
        let table = DomainTable()
        #expect(DomainTableTests.insert(table, "a", line: 1))
        let message = Self.wire(Array(repeating: Array("a".utf8), count: 20))
        var slots = [Int](repeating: -1, count: 8)
        let n = message.withUnsafeBytes { m in slots.withUnsafeMutableBufferPointer { table.slots(ofQuestionIn: m, into: $0) } }
        #expect(n == 8)
        // RulePrefetch over more messages than its batch: the rest are skipped, nothing traps.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prefetch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("l.txt").path
        try "||a^\n".write(toFile: path, atomically: true, encoding: .utf8)
        let set = try RuleSetBuilder.load(paths: [path])
        let prefetch = RulePrefetch(batch: 2)
        message.withUnsafeBytes { m in prefetch.fetch(set, count: 5) { _ in m } }
        #expect(Array("a.a".utf8).withUnsafeBytes { set.decide(name: $0, type: 1).verdict } == .block)
    }
}
