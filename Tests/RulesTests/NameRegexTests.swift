import Testing
@testable import Rules

/// The linear-time regex of list lines (issue 13, finding 5), table-driven.
@Suite struct NameRegexTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var pattern: String
        var matching: [String]
        var notMatching: [String]
        var testDescription: String { "/\(pattern)/" }
    }

    static let cases: [Case] = [
        Case(pattern: "^track[0-9]+\\.", matching: ["track12.example.test", "TRACK1.x"], notMatching: ["tracker.example.test", "xtrack1.a"]),
        Case(pattern: "ads", matching: ["ads.example", "myads.x", "x.ads"], notMatching: ["ad.example", "a.d.s"]),
        Case(pattern: "^ad(s|server)?\\.", matching: ["ad.x", "ads.x", "adserver.x"], notMatching: ["adsx.x", "bad.x"]),
        Case(pattern: "(^|\\.)doubleclick\\.net$", matching: ["doubleclick.net", "a.b.doubleclick.net"], notMatching: ["notdoubleclick.net", "doubleclick.net.evil"]),
        Case(pattern: "^[a-z0-9._-]*\\.example$", matching: ["a-b.c.example", ".example"], notMatching: ["a.example.x", "a_b!.example"]),
        Case(pattern: "^[^.]+\\.test$", matching: ["one.test"], notMatching: ["two.one.test", ".test"]),
        Case(pattern: "^a{2,3}$", matching: ["aa", "aaa"], notMatching: ["a", "aaaa"]),
        Case(pattern: "^a{2}b{0,}c{1,}$", matching: ["aac", "aabbbccc"], notMatching: ["abc", "aab"]),
        Case(pattern: "^\\d+\\.\\w+$", matching: ["123.ab_c"], notMatching: ["12a.x", "1.a-b"]),
        Case(pattern: "^(?:x|y)+z$", matching: ["xyxyz", "xz"], notMatching: ["z", "xyaz"]),
        Case(pattern: "^.*?tracking.*$", matching: ["a.tracking.b"], notMatching: ["trackin.g"]),
        Case(pattern: "^(a+)+$", matching: ["aaaa"], notMatching: ["aaaab", String(repeating: "a", count: 60) + "b.example.test"]),
        Case(pattern: "^(a|aa)*$", matching: ["", "aaaaa"], notMatching: ["aaaab"]),
        Case(pattern: "[]a]", matching: ["]", "a"], notMatching: ["b"]),
        Case(pattern: "^a-$", matching: ["a-"], notMatching: ["a"]),
        Case(pattern: "x{", matching: ["x{"], notMatching: ["x"]),
    ]

    @Test(arguments: cases)
    func matchesLikeARegexShould(_ c: Case) throws {
        let regex = try NameRegex(c.pattern)
        for name in c.matching { #expect(regex.matches(name), "/\(c.pattern)/ should match \(name)") }
        for name in c.notMatching { #expect(!regex.matches(name), "/\(c.pattern)/ should not match \(name)") }
    }

    @Test(arguments: [
        ("(a", "without its ')'"),
        ("a)", "unbalanced ')'"),
        ("[abc", "without its ']'"),
        ("*a", "nothing to repeat"),
        ("(\\w)\\1", "backreferences"),
        ("(?=ads)", "lookaround"),
        ("(?<name>x)", "lookaround"),
        ("\\bads", "word boundaries"),
        ("\\q", "unknown escape"),
        ("a{101}", "repeat count above 100"),
        ("a{3,2}", "upper bound is below"),
        ("[z-a]", "end comes before its start"),
        ("((((a{100}){100}){100}){100})", "too large"),
        (String(repeating: "(", count: 40) + "a" + String(repeating: ")", count: 40), "nested more than"),
        (String(repeating: "a", count: 1025), "longer than 1024"),
        ("^*", "after '^'"),
        ("a\\", "at the end"),
        ("a**", "a quantifier on a quantifier"),
        ("a+{2}", "a quantifier on a quantifier"),
        // Found by the rules fuzz target: an empty group under stacked quantifiers hung the
        // compiler (2^n expansions that never grew the program).
        ("R()" + String(repeating: "+", count: 40), "a quantifier on a quantifier"),
    ])
    func refusedPatternsSayWhy(pattern: String, reason: String) {
        do {
            _ = try NameRegex(pattern)
            Issue.record("/\(pattern)/ compiled")
        } catch {
            #expect(error.reason.contains(reason), "/\(pattern)/: \(error.reason)")
        }
    }

    /// Empty bodies nested as deep as groups go compile at once to nothing to repeat.
    @Test func nestedEmptyRepeatsCompileAtOnce() throws {
        let pattern = String(repeating: "(", count: 30) + "()" + String(repeating: ")+", count: 30) + "x"
        let regex = try NameRegex(pattern)
        #expect(regex.program.count <= 3)
        #expect(regex.matches("x") && !regex.matches("y"))
        let sized = String(repeating: "(", count: 20) + "ab" + String(repeating: "){2}", count: 20)
        do {
            _ = try NameRegex(sized)
            Issue.record("2^20 copies compiled")
        } catch {
            #expect(error.reason.contains("too large"))
        }
    }

    /// The worst name against the worst accepted program: bounded work, whatever the pattern.
    /// (A step count, not a timing: the program size and name length bound the loop.)
    @Test func theCatastrophicPatternIsLinear() throws {
        let regex = try NameRegex("^(a+)+$")
        #expect(regex.program.count < 20)
        let name = String(repeating: "a", count: 240) + "b.example.test"
        #expect(!regex.matches(name))
        // A program near the limit compiles and runs over a maximal name.
        let big = try NameRegex("^(a|b|c|d|e){0,60}[a-z]*x$")
        #expect(big.program.count <= NameRegex.maxInstructions)
        #expect(!big.matches(String(repeating: "a", count: 253)))
        #expect(big.matches(String(repeating: "a", count: 252) + "x"))
    }

    /// A list line with the pattern of finding 5 loads, and a query for the hostile name is
    /// decided (not blocked) at once.
    @Test func theListLineOfFinding5LoadsAndDecides() throws {
        let set = try RuleSemanticsTests.ruleSet(["/^(a+)+$/", "/^(a+)+\\.example\\.test$/"])
        var name = Array((String(repeating: "a", count: 200) + "b.example.test").utf8)
        let match = name.withUnsafeMutableBytes { set.decide(name: UnsafeRawBufferPointer($0), type: 1) }
        #expect(match.verdict == .pass)
        var blocked = Array((String(repeating: "a", count: 200) + ".example.test").utf8)
        #expect(blocked.withUnsafeMutableBytes { set.decide(name: UnsafeRawBufferPointer($0), type: 1) }.verdict == .block)
    }
}
