import Foundation
import Testing
@testable import Rules
import RelayCore

/// Matching and precedence, table-driven in the manner of CoreDNS's acl_test.go: a list, a query,
/// the expected verdict and the line that decided.
@Suite struct RuleSemanticsTests {
    static func ruleSet(_ lines: [String], file: String = "list.txt") throws -> RuleSet {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rules-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(file).path
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return try RuleSetBuilder.load(paths: [path])
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var lines: [String]
        var query: String
        var type: UInt16 = 1
        var verdict: RuleSet.Match.Verdict
        /// The deciding line (1-based), nil when nothing decided.
        var line: Int?
        var testDescription: String { "\(lines) ? \(query)" }
    }

    static let cases: [Case] = [
        // adblock: ||name^ covers the name and below; |name^ only the name
        Case(lines: ["||ads.test^"], query: "ads.test", verdict: .block, line: 1),
        Case(lines: ["||ads.test^"], query: "x.y.ads.test", verdict: .block, line: 1),
        Case(lines: ["||ads.test^"], query: "bads.test", verdict: .pass, line: nil),
        Case(lines: ["|ads.test^"], query: "ads.test", verdict: .block, line: 1),
        Case(lines: ["|ads.test^"], query: "www.ads.test", verdict: .pass, line: nil),
        // plain names and hosts lines: exactly that name (AdGuard Home's documented semantics)
        Case(lines: ["ads.test"], query: "ads.test", verdict: .block, line: 1),
        Case(lines: ["ads.test"], query: "www.ads.test", verdict: .pass, line: nil),
        Case(lines: ["0.0.0.0 ads.test"], query: "www.ads.test", verdict: .pass, line: nil),
        Case(lines: ["0.0.0.0 a.test b.test # two"], query: "b.test", verdict: .block, line: 1),
        Case(lines: ["::1 ads.test"], query: "ads.test", verdict: .block, line: 1),
        // a real address in a hosts line is a local answer
        Case(lines: ["10.53.9.9 nas.test"], query: "nas.test", verdict: .rewrite(IPAddress("10.53.9.9")!), line: 1),
        // wildcards: below the name only
        Case(lines: ["*.ads.test"], query: "ads.test", verdict: .pass, line: nil),
        Case(lines: ["*.ads.test"], query: "a.ads.test", verdict: .block, line: 1),
        Case(lines: [".ads.test"], query: "a.ads.test", verdict: .block, line: 1),
        // wildcards inside names and regexes
        Case(lines: ["||ad*.test^"], query: "adserver.test", verdict: .block, line: 1),
        Case(lines: ["||ad*.test^"], query: "www.adx.test", verdict: .block, line: 1),
        Case(lines: ["/^track[0-9]+\\./"], query: "track12.example.test", verdict: .block, line: 1),
        Case(lines: ["/^track[0-9]+\\./"], query: "tracker.example.test", verdict: .pass, line: nil),
        // exceptions, important
        Case(lines: ["||ads.test^", "@@||ok.ads.test^"], query: "ok.ads.test", verdict: .pass, line: 2),
        Case(lines: ["||ads.test^", "@@||ok.ads.test^"], query: "no.ads.test", verdict: .block, line: 1),
        Case(lines: ["||ads.test^$important", "@@||ads.test^"], query: "ads.test", verdict: .block, line: 1),
        Case(lines: ["||ads.test^$important", "@@||ads.test^$important"], query: "ads.test", verdict: .pass, line: 2),
        // $dnstype narrows
        Case(lines: ["||ads.test^$dnstype=AAAA"], query: "ads.test", type: 1, verdict: .pass, line: nil),
        Case(lines: ["||ads.test^$dnstype=AAAA"], query: "ads.test", type: 28, verdict: .block, line: 1),
        Case(lines: ["||ads.test^$dnstype=~A"], query: "ads.test", type: 1, verdict: .pass, line: nil),
        Case(lines: ["||ads.test^$dnstype=~A"], query: "ads.test", type: 65, verdict: .block, line: 1),
        // $denyallow carves names out
        Case(lines: ["||test^$denyallow=good.test"], query: "good.test", verdict: .pass, line: nil),
        Case(lines: ["||test^$denyallow=good.test"], query: "x.good.test", verdict: .pass, line: nil),
        Case(lines: ["||test^$denyallow=good.test"], query: "bad.test", verdict: .block, line: 1),
        // $badfilter switches its twin off, wherever it is
        Case(lines: ["||ads.test^", "||ads.test^$badfilter"], query: "ads.test", verdict: .pass, line: nil),
        Case(lines: ["||ads.test^$important", "||ads.test^$badfilter"], query: "ads.test", verdict: .block, line: 1),
        // dnsmasq and Unbound cover the name and below
        Case(lines: ["address=/ads.test/#"], query: "x.ads.test", verdict: .block, line: 1),
        Case(lines: ["address=/ads.test/0.0.0.0"], query: "ads.test", verdict: .block, line: 1),
        Case(lines: ["address=/nas.test/10.53.9.9"], query: "nas.test", verdict: .rewrite(IPAddress("10.53.9.9")!), line: 1),
        Case(lines: ["local=/ads.test/"], query: "ads.test", verdict: .block, line: 1),
        Case(lines: ["server:", "local-zone: \"ads.test.\" always_null"], query: "a.ads.test", verdict: .block, line: 2),
        Case(lines: ["local-zone: \"ads.test.\" transparent"], query: "ads.test", verdict: .pass, line: nil),
        // case and trailing dots do not matter
        Case(lines: ["||ADS.Test.^"], query: "ads.test", verdict: .block, line: 1),
        // a rewrite beats a plain block of the same rank
        Case(lines: ["||nas.test^", "10.53.9.9 nas.test"], query: "nas.test", verdict: .rewrite(IPAddress("10.53.9.9")!), line: 2),
    ]

    @Test(arguments: cases)
    func decides(_ c: Case) throws {
        let set = try Self.ruleSet(c.lines)
        let (match, matches) = set.explain(name: c.query, type: c.type)
        #expect(match.verdict == c.verdict)
        #expect(match.rule.map { Int(set.rule(at: $0).source.line) } == c.line)
        if let line = c.line {
            #expect(matches.first?.source.line == line)
            #expect(matches.first?.source.text == c.lines[line - 1].trimmingCharacters(in: .whitespaces))
        }
    }

    struct LineCase: Sendable, CustomTestStringConvertible {
        var line: String
        var kind: String  // comment, ignored, rejected
        var reason: String = ""
        var testDescription: String { line }
    }

    static let lineCases: [LineCase] = [
        LineCase(line: "! Title: a list", kind: "comment"),
        LineCase(line: "# comment", kind: "comment"),
        LineCase(line: "[Adblock Plus 2.0]", kind: "comment"),
        LineCase(line: "   ", kind: "comment"),
        LineCase(line: "example.test##.banner", kind: "ignored", reason: "cosmetic"),
        LineCase(line: "||example.test/ads/*", kind: "ignored", reason: "URL rule"),
        LineCase(line: "||example.test^$third-party", kind: "ignored", reason: "web requests"),
        LineCase(line: "127.0.0.1 localhost", kind: "ignored", reason: "machine itself"),
        LineCase(line: "||exa mple.test^", kind: "rejected", reason: "not a host name"),
        LineCase(line: "||example.test^$client=10.53.1.2", kind: "rejected", reason: "not supported yet"),
        LineCase(line: "||example.test^$frobnicate", kind: "rejected", reason: "unknown modifier"),
        LineCase(line: "||example.test^$dnstype=BOGUS", kind: "rejected", reason: "unknown record type"),
        LineCase(line: "||example.test^$dnstype=A|~AAAA", kind: "rejected", reason: "mixes"),
        LineCase(line: "/unclosed[/", kind: "rejected", reason: "invalid regular expression"),
        LineCase(line: "999.1.1.1 host.test", kind: "rejected", reason: "not an IP address"),
        LineCase(line: "0.0.0.0 bad_name!.test", kind: "rejected", reason: "not a host name"),
        LineCase(line: "address=/ads.test/banana", kind: "rejected", reason: "not an address"),
        LineCase(line: "server=/corp.test/10.53.2.53", kind: "rejected", reason: "not supported yet"),
        LineCase(line: "local-zone: \"ads.test.\" sometimes", kind: "rejected", reason: "unknown local-zone type"),
        LineCase(line: "local-zone: ads.test. always_null", kind: "rejected", reason: "quoted"),
        LineCase(line: "ads.*.test", kind: "rejected", reason: "wildcard"),
        LineCase(line: String(repeating: "a", count: 64) + ".test", kind: "rejected", reason: "not a host name"),
    ]

    @Test(arguments: lineCases)
    func classifiesLines(_ c: LineCase) {
        switch LineParser.parse(Substring(c.line)) {
        case .comment: #expect(c.kind == "comment")
        case .ignored(let why): #expect(c.kind == "ignored"); #expect(why.contains(c.reason), "\(why)")
        case .rejected(let why): #expect(c.kind == "rejected"); #expect(why.contains(c.reason), "\(why)")
        case .rules(let r): Issue.record("parsed as rules: \(r)")
        }
    }

    @Test func reportsNameFileAndLineOfEveryRejectedLine() throws {
        let set = try Self.ruleSet(["||good.test^", "||bad name^", "@@||ok.test^", "x.test##.ad", "||a.test^$client=1.2.3.4"])
        let report = try #require(set.reports.first)
        #expect(report.rules == 1)
        #expect(report.exceptions == 1)
        #expect(report.ignored == 1)
        #expect(report.rejected.map(\.line) == [2, 5])
        #expect(report.rejected[0].text == "||bad name^")
    }

    @Test func aMissingListFailsTheLoad() {
        #expect(throws: RuleLoadError.self) { try RuleSetBuilder.load(paths: ["/nonexistent/list.txt"]) }
    }

    @Test func wireNamesBecomeLowerCaseText() {
        let wire: [UInt8] = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x57, 0x77, 0x57, 3, 0x61, 0x42, 0x63, 0, 0, 1, 0, 1]
        var out = [UInt8](repeating: 0, count: 256)
        let n = wire.withUnsafeBytes { w in out.withUnsafeMutableBytes { DomainName.fromWire(w, into: $0) } }
        #expect(n == 7)
        #expect(String(decoding: out[0..<7], as: UTF8.self) == "www.abc")
    }
}

/// The real public lists in ../shared/data/blocklists load with nothing rejected.
@Suite struct RealListTests {
    /// shared/ sits beside the repository (as in CI); TPROXY_RELAY_SHARED overrides.
    static let directory = (ProcessInfo.processInfo.environment["TPROXY_RELAY_SHARED"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../shared").standardized.path)
        + "/data/blocklists"

    @Test(arguments: ["hagezi-light.adblock.txt", "hagezi-light.wildcard.txt", "hagezi-personal.dnsmasq.txt",
                      "hagezi-personal.domains.txt", "hagezi-personal.hosts.txt", "hagezi-personal.unbound.conf",
                      "someonewhocares.hosts.txt", "hagezi-doh-bypass.adblock.txt"])
    func loads(file: String) throws {
        let path = Self.directory + "/" + file
        try #require(FileManager.default.fileExists(atPath: path), "shared block lists not found at \(path)")
        let set = try RuleSetBuilder.load(paths: [path])
        let report = try #require(set.reports.first)
        #expect(report.rejected.isEmpty, "\(report.rejected.prefix(3))")
        #expect(report.rules > 700)
    }
}
