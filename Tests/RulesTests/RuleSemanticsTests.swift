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
        /// Who asks (for $client); nil: unknown.
        var client: String? = nil
        /// The server=/d/ upstream the query should go to.
        var upstream: String? = nil
        var testDescription: String { "\(lines) ? \(query)\(client.map { " from " + $0 } ?? "")" }
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
        // an IPv6 zone is dropped; a line for the machine itself is no rule
        Case(lines: ["fe80::1%lo0 localhost", "fe80::1%eth0 nas.test"], query: "nas.test", verdict: .rewrite(IPAddress("fe80::1")!), line: 2),
        Case(lines: ["fe80::1%lo0 localhost", "0.0.0.0 ads.test"], query: "localhost", verdict: .pass, line: nil),
        Case(lines: ["127.0.0.1 localhost.localdomain", "0.0.0.0 ads.test"], query: "localhost.localdomain", verdict: .pass, line: nil),
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
        // $client narrows a rule to addresses or blocks of them; ~ excludes
        Case(lines: ["||ads.test^$client=10.53.1.0/24"], query: "ads.test", verdict: .block, line: 1, client: "10.53.1.5"),
        Case(lines: ["||ads.test^$client=10.53.1.0/24"], query: "ads.test", verdict: .pass, line: nil, client: "10.53.9.5"),
        Case(lines: ["||ads.test^$client=10.53.1.0/24"], query: "ads.test", verdict: .pass, line: nil),
        Case(lines: ["||ads.test^$client=~10.53.1.7"], query: "ads.test", verdict: .pass, line: nil, client: "10.53.1.7"),
        Case(lines: ["||ads.test^$client=~10.53.1.7"], query: "ads.test", verdict: .block, line: 1, client: "10.53.1.8"),
        Case(lines: ["||ads.test^$client=10.53.1.0/24|~10.53.1.7"], query: "ads.test", verdict: .pass, line: nil, client: "10.53.1.7"),
        Case(lines: ["||ads.test^", "@@||ads.test^$client=fd53:1::/64"], query: "ads.test", verdict: .pass, line: 2, client: "fd53:1::5"),
        Case(lines: ["||ads.test^", "@@||ads.test^$client=fd53:1::/64"], query: "ads.test", verdict: .block, line: 1, client: "10.53.1.5"),
        // $dnsrewrite: records, response codes, aliases; above blocks and plain exceptions
        Case(lines: ["||nas.test^$dnsrewrite=10.53.9.9"], query: "nas.test",
             verdict: .dnsRewrite(.record(type: 1, rdata: [10, 53, 9, 9], text: "10.53.9.9")), line: 1),
        Case(lines: ["||nas.test^$dnsrewrite=NOERROR;AAAA;fd53::9"], query: "x.nas.test",
             verdict: .dnsRewrite(.record(type: 28, rdata: IPv6Address(bytes: [0xfd, 0x53] + [UInt8](repeating: 0, count: 13) + [9]).bytes, text: "fd53::9")), line: 1),
        Case(lines: ["||x.test^$dnsrewrite=REFUSED"], query: "x.test", verdict: .dnsRewrite(.rcode(5)), line: 1),
        Case(lines: ["||x.test^$dnsrewrite=NXDOMAIN;;"], query: "x.test", verdict: .dnsRewrite(.rcode(3)), line: 1),
        Case(lines: ["||x.test^$dnsrewrite=www.lab.test"], query: "x.test", verdict: .dnsRewrite(.cname("www.lab.test")), line: 1),
        Case(lines: ["||x.test^", "||x.test^$dnsrewrite=10.53.9.9"], query: "x.test",
             verdict: .dnsRewrite(.record(type: 1, rdata: [10, 53, 9, 9], text: "10.53.9.9")), line: 2),
        Case(lines: ["@@||x.test^", "||x.test^$dnsrewrite=REFUSED"], query: "x.test", verdict: .dnsRewrite(.rcode(5)), line: 2),
        Case(lines: ["||x.test^$dnsrewrite=10.53.9.9", "@@||x.test^$dnsrewrite"], query: "x.test", verdict: .pass, line: nil),
        Case(lines: ["||x.test^$dnsrewrite=10.53.9.9", "||x.test^$dnsrewrite=10.53.9.8", "@@||x.test^$dnsrewrite=10.53.9.9"], query: "x.test",
             verdict: .dnsRewrite(.record(type: 1, rdata: [10, 53, 9, 8], text: "10.53.9.8")), line: 2),
        Case(lines: ["||x.test^$dnsrewrite=1.2.3.4", "||x.test^$dnsrewrite=REFUSED"], query: "x.test", verdict: .dnsRewrite(.rcode(5)), line: 2),
        Case(lines: ["||x.test^$dnstype=HTTPS,dnsrewrite=NOERROR"], query: "x.test", type: 65, verdict: .dnsRewrite(.rcode(0)), line: 1),
        Case(lines: ["||x.test^$dnstype=HTTPS,dnsrewrite=NOERROR"], query: "x.test", type: 1, verdict: .pass, line: nil),
        // dnsmasq server=/d/: a per-domain upstream, the longest name wins; blocks still block
        Case(lines: ["server=/corp.test/10.53.4.53"], query: "a.corp.test", verdict: .pass, line: 1, upstream: "10.53.4.53:53"),
        Case(lines: ["server=/corp.test/10.53.4.53#5353", "server=/a.corp.test/#"], query: "x.a.corp.test", verdict: .pass, line: 2),
        Case(lines: ["server=/corp.test/10.53.4.53#5353", "server=/a.corp.test/#"], query: "b.corp.test", verdict: .pass, line: 1, upstream: "10.53.4.53:5353"),
        Case(lines: ["server=/corp.test/fd53:4::53"], query: "corp.test", verdict: .pass, line: 1, upstream: "[fd53:4::53]:53"),
        Case(lines: ["server=/corp.test/"], query: "corp.test", verdict: .block, line: 1),
        Case(lines: ["server=/corp.test/10.53.4.53", "||ads.corp.test^"], query: "ads.corp.test", verdict: .block, line: 2),
    ]

    @Test(arguments: cases)
    func decides(_ c: Case) throws {
        let set = try Self.ruleSet(c.lines)
        let (match, matches) = set.explain(name: c.query, type: c.type, client: c.client.flatMap { IPAddress($0) })
        #expect(match.verdict == c.verdict)
        #expect(match.upstream?.description == c.upstream)
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
        LineCase(line: "||example.test^$client='Frank laptop'", kind: "rejected", reason: "use an address or a CIDR"),
        LineCase(line: "||example.test^$client=10.53.1.0/33", kind: "rejected", reason: "not an address or CIDR"),
        LineCase(line: "||example.test^$ctag=kids", kind: "rejected", reason: "client tags"),
        LineCase(line: "||example.test^$dnsrewrite", kind: "rejected", reason: "needs a value"),
        LineCase(line: "||example.test^$dnsrewrite=NOERROR;NAPTR;x", kind: "rejected", reason: "not supported"),
        LineCase(line: "||example.test^$dnsrewrite=NOERROR;A;fd53::1", kind: "rejected", reason: "not an IPv4 address"),
        LineCase(line: "||example.test^$dnsrewrite=BOGUS;;", kind: "rejected", reason: "unknown response code"),
        LineCase(line: "||example.test^$dnsrewrite=NXDOMAIN;A;1.2.3.4", kind: "rejected", reason: "carries no record"),
        LineCase(line: "||example.test^$dnsrewrite=NOERROR;MX;mail.test", kind: "rejected", reason: "PREFERENCE HOST"),
        LineCase(line: "||example.test^$dnsrewrite=not a name!", kind: "rejected", reason: "not a response code"),
        LineCase(line: "/unterminated", kind: "rejected", reason: "closing '/'"),
        LineCase(line: "||example.test^$dnsrewrite=NOERROR;HTTPS;1", kind: "rejected", reason: "PRIORITY TARGET"),
        LineCase(line: "||example.test^$dnsrewrite=NOERROR;HTTPS;1 . color=blue", kind: "rejected", reason: "unknown SVCB parameter"),
        LineCase(line: "||example.test^$dnsrewrite=NOERROR;HTTPS;1 . alpn=h2 alpn=h3", kind: "rejected", reason: "given twice"),
        LineCase(line: "||example.test^$dnsrewrite=NOERROR;HTTPS;1 . ipv4hint=fd53::1", kind: "rejected", reason: "not an IPv4 address"),
        LineCase(line: "||example.test^$dnsrewrite=NOERROR;HTTPS;1 . ipv6hint=10.0.0.1", kind: "rejected", reason: "not an IPv6 address"),
        LineCase(line: "||example.test^$dnsrewrite=NOERROR;HTTPS;0 . alpn=h3", kind: "rejected", reason: "AliasMode"),
        LineCase(line: "||example.test^$dnsrewrite=NOERROR;HTTPS;1 . ech=not*base64", kind: "rejected", reason: "base64"),
        LineCase(line: "||example.test^$dnsrewrite=NOERROR;HTTPS;1 . port=99999", kind: "rejected", reason: "port needs a number"),
        LineCase(line: "||example.test^$dnsrewrite=NOERROR;SVCB;1 . alpn=", kind: "rejected", reason: "alpn needs a list"),
        LineCase(line: "server=/corp.test/10.53.2.53@eth0", kind: "rejected", reason: "not an upstream address"),
        LineCase(line: "server=/corp.test/10.53.2.53#0", kind: "rejected", reason: "not an upstream address"),
        LineCase(line: "||example.test^$frobnicate", kind: "rejected", reason: "unknown modifier"),
        LineCase(line: "||example.test^$dnstype=BOGUS", kind: "rejected", reason: "unknown record type"),
        LineCase(line: "||example.test^$dnstype=A|~AAAA", kind: "rejected", reason: "mixes"),
        LineCase(line: "/unclosed[/", kind: "rejected", reason: "invalid regular expression"),
        LineCase(line: "999.1.1.1 host.test", kind: "rejected", reason: "not an IP address"),
        LineCase(line: "0.0.0.0 bad_name!.test", kind: "rejected", reason: "not a host name"),
        LineCase(line: "address=/ads.test/banana", kind: "rejected", reason: "not an address"),
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
        let set = try Self.ruleSet(["||good.test^", "||bad name^", "@@||ok.test^", "x.test##.ad", "||a.test^$client='name'"])
        let report = try #require(set.reports.first)
        #expect(report.rules == 1)
        #expect(report.exceptions == 1)
        #expect(report.ignored == 1)
        #expect(report.rejected.map(\.line) == [2, 5])
        #expect(report.rejected[0].text == "||bad name^")
    }

    @Test func rewriteRecordsOfTheQueryTypeAllGoIntoTheAnswer() throws {
        let set = try Self.ruleSet(["||multi.test^$dnsrewrite=10.53.9.1", "||multi.test^$dnsrewrite=10.53.9.2",
                                    "||multi.test^$dnsrewrite=fd53::1", "||multi.test^$dnsrewrite=NOERROR;TXT;hello",
                                    "@@||multi.test^$dnsrewrite=10.53.9.2"])
        var seen: [[UInt8]] = []
        let name = Array("multi.test".utf8)
        name.withUnsafeBytes { set.forEachRewriteRecord(name: $0, type: 1) { _, rdata in seen.append(rdata) } }
        #expect(seen == [[10, 53, 9, 1]])
        seen = []
        name.withUnsafeBytes { set.forEachRewriteRecord(name: $0, type: 16) { _, rdata in seen.append(rdata) } }
        #expect(seen == [[5] + Array("hello".utf8)])
    }

    /// `$dnsrewrite` HTTPS and SVCB records (AdGuard's syntax) become RFC 9460 wire data: keys in
    /// increasing order whatever order they were written in.
    @Test func httpsRewriteRecordsAreWrittenForTheWire() throws {
        let set = try Self.ruleSet(["||svc.test^$dnsrewrite=NOERROR;HTTPS;1 . ipv4hint=10.53.9.1\\,10.53.9.2 alpn=h3\\,h2 port=8443",
                                    "||svc.test^$dnsrewrite=NOERROR;SVCB;0 target.test",
                                    "||svc.test^$dnsrewrite=NOERROR;HTTPS;2 alt.test. ech=AEX+DQ== ipv6hint=fd53::1 no-default-alpn key65000=x"])
        var https: [[UInt8]] = []
        var svcb: [[UInt8]] = []
        let name = Array("svc.test".utf8)
        name.withUnsafeBytes { set.forEachRewriteRecord(name: $0, type: 65) { _, rdata in https.append(rdata) } }
        name.withUnsafeBytes { set.forEachRewriteRecord(name: $0, type: 64) { _, rdata in svcb.append(rdata) } }
        #expect(https.count == 2 && svcb.count == 1)
        #expect(https[0] == [0, 1, 0]
                + [0, 1, 0, 6, 2] + Array("h3".utf8) + [2] + Array("h2".utf8)
                + [0, 3, 0, 2, 0x20, 0xFB]
                + [0, 4, 0, 8, 10, 53, 9, 1, 10, 53, 9, 2])
        let alt: [UInt8] = [3] + Array("alt".utf8) + [4] + Array("test".utf8) + [0]
        let v6: [UInt8] = [0xfd, 0x53] + [UInt8](repeating: 0, count: 13) + [1]
        #expect(https[1] == [0, 2] + alt
                + [0, 2, 0, 0]
                + [0, 5, 0, 4, 0x00, 0x45, 0xFE, 0x0D]
                + [0, 6, 0, 16] + v6
                + [0xFD, 0xE8, 0, 1, UInt8(ascii: "x")])
        #expect(svcb[0] == [0, 0, 6] + Array("target".utf8) + [4] + Array("test".utf8) + [0])
    }

    @Test func clientPoliciesPickTheMostSpecificBlock() throws {
        let policy = ClientPolicy([(IPPrefix("10.53.1.0/24")!, ListMask(lists: [0])), (IPPrefix("10.53.1.7")!, ListMask(lists: [])),
                                   (IPPrefix("fd53:1::/64")!, ListMask(lists: [1]))])
        #expect(policy.lists(for: IPAddress("10.53.1.5")!) == ListMask(lists: [0]))
        #expect(policy.lists(for: IPAddress("10.53.1.7")!) == ListMask(lists: []))
        #expect(policy.lists(for: IPAddress("fd53:1::9")!) == ListMask(lists: [1]))
        #expect(policy.lists(for: IPAddress("10.53.2.5")!) == .all)
        // The mask decides which lists' rules apply.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("policy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let a = dir.appendingPathComponent("a.txt").path, b = dir.appendingPathComponent("b.txt").path
        try "||a.test^".write(toFile: a, atomically: true, encoding: .utf8)
        try "||b.test^".write(toFile: b, atomically: true, encoding: .utf8)
        let set = try RuleSetBuilder.load(paths: [a, b])
        #expect(set.explain(name: "a.test", type: 1, lists: ListMask(lists: [0])).decision.verdict == .block)
        #expect(set.explain(name: "b.test", type: 1, lists: ListMask(lists: [0])).decision.verdict == .pass)
        #expect(set.explain(name: "b.test", type: 1, lists: .all).decision.verdict == .block)
    }

    struct BrokenList: Sendable, CustomTestStringConvertible {
        var name: String
        var bytes: [UInt8]
        /// nil: the list loads (with rejected lines); otherwise the load fails with this reason.
        var failure: String?
        var rejectedReason: String = ""
        var testDescription: String { name }
    }

    static let brokenLists: [BrokenList] = [
        BrokenList(name: "binary garbage", bytes: (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) }, failure: "not a text file"),
        BrokenList(name: "a 10 MB line", bytes: [UInt8](repeating: UInt8(ascii: "a"), count: 10 << 20), failure: "at most 8192"),
        BrokenList(name: "a 10 MB line among good ones", bytes: Array("||good.test^\n".utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 10 << 20)
                   + Array("\n||also.test^\n".utf8), failure: nil, rejectedReason: "at most 8192"),
        BrokenList(name: "invalid UTF-8", bytes: Array("||good.test^\n||b".utf8) + [0xff, 0xfe] + Array("d.test^\n||also.test^".utf8), failure: nil, rejectedReason: "UTF-8"),
        BrokenList(name: "only invalid UTF-8", bytes: [0xc3, 0x28, 0x0a, 0xff, 0x0a], failure: "no rule could be read"),
        BrokenList(name: "unterminated regex", bytes: Array("/ads[0-9]+\n".utf8), failure: "closing '/'"),
        BrokenList(name: "empty", bytes: [], failure: nil),
    ]

    @Test(arguments: brokenLists)
    func brokenListsFailClearlyOrLoseOnlyTheirBadLines(_ c: BrokenList) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("broken-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("list.txt").path
        try Data(c.bytes).write(to: URL(fileURLWithPath: path))
        do {
            let set = try RuleSetBuilder.load(paths: [path])
            #expect(c.failure == nil, "loaded, expected: \(c.failure ?? "")")
            if !c.rejectedReason.isEmpty {
                let report = try #require(set.reports.first)
                #expect(report.rules == 2)
                #expect(report.rejected.count == 1)
                #expect(report.rejected.first?.reason.contains(c.rejectedReason) == true, "\(report.rejected)")
            }
        } catch let error as RuleLoadError {
            let failure = try #require(c.failure, "failed: \(error)")
            #expect(error.description.contains(failure), "\(error)")
            #expect(error.list == path)
        }
    }

    @Test func aMissingListFailsTheLoad() {
        #expect(throws: RuleLoadError.self) { try RuleSetBuilder.load(paths: ["/nonexistent/list.txt"]) }
        // Issue 13, finding 4: a FIFO at a list's path is refused at once (no writer: a blocking
        // open would hang the loading thread forever).
        let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("fifo-\(UUID().uuidString).txt").path
        #expect(mkfifo(fifo, 0o600) == 0)
        do {
            _ = try RuleSetBuilder.load(paths: [fifo])
            Issue.record("a FIFO loaded as a list")
        } catch {
            #expect(error.description.contains("is a FIFO, not a regular file"), "\(error)")
        }
    }

    @Test func wireNamesBecomeLowerCaseText() {
        let wire: [UInt8] = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x57, 0x77, 0x57, 3, 0x61, 0x42, 0x63, 0, 0, 1, 0, 1]
        var out = [UInt8](repeating: 0, count: 256)
        let n = wire.withUnsafeBytes { w in out.withUnsafeMutableBytes { DomainName.fromWire(w, into: $0) } }
        #expect(n == 7)
        #expect(String(decoding: out[0..<7], as: UTF8.self) == "www.abc")
    }
}

/// Where the real public block lists are: ../shared/data/blocklists beside the repository (as in
/// CI), or $TPROXY_RELAY_SHARED/data/blocklists.
enum SharedLists {
    static let directory = (ProcessInfo.processInfo.environment["TPROXY_RELAY_SHARED"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../shared").standardized.path)
        + "/data/blocklists"
    static var available: Bool { FileManager.default.fileExists(atPath: directory) }
}

/// The real public lists load with nothing rejected. A clone without them beside it skips this
/// suite (Swift Testing reports it skipped, with the reason).
@Suite(.enabled(if: SharedLists.available, "public block lists not found (../shared/data/blocklists or $TPROXY_RELAY_SHARED)"))
struct RealListTests {
    @Test(arguments: ["hagezi-light.adblock.txt", "hagezi-light.wildcard.txt", "hagezi-personal.dnsmasq.txt",
                      "hagezi-personal.domains.txt", "hagezi-personal.hosts.txt", "hagezi-personal.unbound.conf",
                      "someonewhocares.hosts.txt", "hagezi-doh-bypass.adblock.txt"])
    func loads(file: String) throws {
        let path = SharedLists.directory + "/" + file
        try #require(FileManager.default.fileExists(atPath: path), "shared block lists not found at \(path)")
        let set = try RuleSetBuilder.load(paths: [path])
        let report = try #require(set.reports.first)
        #expect(report.rejected.isEmpty, "\(report.rejected.prefix(3))")
        // The list's own count ("# Domains: N" in its header) is the number of rules read.
        let header = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").prefix(40)
        let stated = try #require(header.compactMap { line -> Int? in
            guard let range = line.range(of: "Domains: ") else { return nil }
            return Int(line[range.upperBound...].trimmingCharacters(in: .whitespaces))
        }.first, "no '# Domains: N' line in the header")
        #expect(report.rules == stated)
    }
}
