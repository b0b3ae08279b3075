import DNS
import RelayCore
import Testing
@testable import Pipeline

/// The pipeline decided in one place: every stage, table-driven (CoreDNS `acl_test.go` style),
/// with no sockets and no root. Each case is a query on the wire as a client sends it.
@Suite struct QueryPipelineTests {
    static let asked = PipelineFixture.asked
    static let corp = Endpoint(address: IPAddress("10.53.3.53")!, port: 53)
    static let servers = "upstream:\n  mode: servers\n  servers: [10.53.2.1, 10.53.2.2]\n"

    enum Expected: Equatable {
        case answer(AnswerSource, rcode: UInt8, answers: Int, rule: RuleOrigin)
        case forward(to: Endpoint, byRule: Bool = false, alias: String? = nil, rule: RuleOrigin = .none)
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var label: String
        var name: String
        var type: UInt16 = 1
        var client = "10.53.1.10"
        var destination = QueryPipelineTests.asked
        var transport = Transport.udp
        var blockWith = "nxdomain"
        var upstream = "upstream:\n  mode: original\n"
        /// An answer for the name (TTL 60, stored at second 100) is in the cache under this key.
        var cachedUnder: Endpoint?
        /// The worker's clock when the query comes.
        var now: UInt32 = 100
        var expected: Expected
        var testDescription: String { label }
    }

    static func rule(_ line: UInt32, list: UInt16 = 0) -> RuleOrigin { RuleOrigin(list: list, line: line) }
    static let none = RuleOrigin.none
    static let configured = UpstreamChoice.configuredServersKey

    static let cases: [Case] = [
        // Local zones: first, authoritative, whatever the lists say.
        Case(label: "zone A (the zone is also blocked by a list)", name: "nas.home.lan", expected: .answer(.zone, rcode: 0, answers: 1, rule: none)),
        Case(label: "zone AAAA", name: "nas.home.lan", type: 28, expected: .answer(.zone, rcode: 0, answers: 1, rule: none)),
        Case(label: "zone NODATA", name: "router.home.lan", type: 15, expected: .answer(.zone, rcode: 0, answers: 0, rule: none)),
        Case(label: "zone NXDOMAIN", name: "missing.home.lan", expected: .answer(.zone, rcode: 3, answers: 0, rule: none)),
        Case(label: "zone CNAME followed inside the zone", name: "files.home.lan", expected: .answer(.zone, rcode: 0, answers: 2, rule: none)),
        Case(label: "zone wildcard", name: "anything.dev.home.lan", expected: .answer(.zone, rcode: 0, answers: 1, rule: none)),
        Case(label: "zone apex SOA", name: "home.lan", type: 6, expected: .answer(.zone, rcode: 0, answers: 1, rule: none)),
        Case(label: "zone over TCP", name: "NAS.Home.Lan", transport: .tcp, expected: .answer(.zone, rcode: 0, answers: 1, rule: none)),
        // Blocks, in every block mode.
        Case(label: "block NXDOMAIN", name: "ads.test", expected: .answer(.blocked, rcode: 3, answers: 0, rule: rule(1))),
        Case(label: "block a subdomain", name: "x.y.ads.test", expected: .answer(.blocked, rcode: 3, answers: 0, rule: rule(1))),
        Case(label: "block over TCP", name: "ads.test", transport: .tcp, expected: .answer(.blocked, rcode: 3, answers: 0, rule: rule(1))),
        Case(label: "block REFUSED", name: "ads.test", blockWith: "refused", expected: .answer(.blocked, rcode: 5, answers: 0, rule: rule(1))),
        Case(label: "block null_ip A", name: "ads.test", blockWith: "null-ip", expected: .answer(.blocked, rcode: 0, answers: 1, rule: rule(1))),
        Case(label: "block null_ip AAAA", name: "ads.test", type: 28, blockWith: "null-ip", expected: .answer(.blocked, rcode: 0, answers: 1, rule: rule(1))),
        Case(label: "block null_ip MX: NODATA", name: "ads.test", type: 15, blockWith: "null-ip", expected: .answer(.blocked, rcode: 0, answers: 0, rule: rule(1))),
        Case(label: "block with an address", name: "ads.test", blockWith: "10.53.9.1", expected: .answer(.blocked, rcode: 0, answers: 1, rule: rule(1))),
        Case(label: "block with an address, other family", name: "ads.test", type: 28, blockWith: "10.53.9.1", expected: .answer(.blocked, rcode: 0, answers: 0, rule: rule(1))),
        Case(label: "hosts 0.0.0.0 line blocks", name: "tracker.test", expected: .answer(.blocked, rcode: 3, answers: 0, rule: rule(4))),
        Case(label: "regex block", name: "regex42.test", expected: .answer(.blocked, rcode: 3, answers: 0, rule: rule(15))),
        Case(label: "regex does not match", name: "regexx.test", expected: .forward(to: asked)),
        Case(label: "$dnstype block, its type", name: "typed.test", type: 28, expected: .answer(.blocked, rcode: 3, answers: 0, rule: rule(16))),
        Case(label: "$dnstype block, other type", name: "typed.test", expected: .forward(to: asked)),
        Case(label: "server=/d/ without address blocks", name: "nxlocal.test", expected: .answer(.blocked, rcode: 3, answers: 0, rule: rule(20))),
        // Rewrites.
        Case(label: "hosts line rewrite", name: "printer.test", expected: .answer(.rewritten, rcode: 0, answers: 1, rule: rule(5))),
        Case(label: "hosts line rewrite, other family", name: "printer.test", type: 28, expected: .answer(.rewritten, rcode: 0, answers: 0, rule: rule(5))),
        Case(label: "$dnsrewrite A", name: "rw.test", expected: .answer(.rewritten, rcode: 0, answers: 1, rule: rule(6))),
        Case(label: "$dnsrewrite AAAA record", name: "rw.test", type: 28, expected: .answer(.rewritten, rcode: 0, answers: 1, rule: rule(6))),
        Case(label: "$dnsrewrite, type without records", name: "rw.test", type: 15, expected: .answer(.rewritten, rcode: 0, answers: 0, rule: rule(6))),
        Case(label: "$dnsrewrite NXDOMAIN", name: "nx.test", expected: .answer(.rewritten, rcode: 3, answers: 0, rule: rule(8))),
        Case(label: "$dnsrewrite REFUSED", name: "refused.test", expected: .answer(.rewritten, rcode: 5, answers: 0, rule: rule(19))),
        Case(label: "$dnsrewrite alias asked upstream", name: "alias.test", expected: .forward(to: asked, alias: "www.example.test", rule: rule(9))),
        Case(label: "$dnsrewrite alias into a local zone", name: "alias-local.test", expected: .answer(.rewrittenToZone, rcode: 0, answers: 2, rule: rule(10))),
        // Exceptions and $important.
        Case(label: "exception beats block", name: "good.ads.test", expected: .forward(to: asked, rule: rule(3))),
        Case(label: "important block beats exception", name: "important.test", expected: .answer(.blocked, rcode: 3, answers: 0, rule: rule(12))),
        Case(label: "important exception beats important block", name: "both.test", expected: .forward(to: asked, rule: rule(18))),
        // $client and client policies (filters.clients).
        Case(label: "$client rule, that client", name: "kids.test", client: "10.53.1.20", expected: .answer(.blocked, rcode: 3, answers: 0, rule: rule(11))),
        Case(label: "$client rule, another client", name: "kids.test", expected: .forward(to: asked)),
        Case(label: "second list applies to everyone else", name: "games.test", expected: .answer(.blocked, rcode: 3, answers: 0, rule: rule(1, list: 1))),
        Case(label: "policy client: its list", name: "games.test", client: "10.53.1.30", expected: .answer(.blocked, rcode: 3, answers: 0, rule: rule(1, list: 1))),
        Case(label: "policy client: other lists do not apply", name: "ads.test", client: "10.53.1.30", expected: .forward(to: asked)),
        // server=/d/IP rules and the upstream choice.
        Case(label: "server= rule", name: "corp.test", expected: .forward(to: corp, byRule: true, rule: rule(14))),
        Case(label: "server= rule, subdomain, servers mode", name: "a.corp.test", upstream: servers, expected: .forward(to: corp, byRule: true, rule: rule(14))),
        Case(label: "original mode: the server asked", name: "example.test", expected: .forward(to: asked)),
        Case(label: "servers mode: the first server", name: "example.test", upstream: servers,
             expected: .forward(to: Endpoint(address: IPAddress("10.53.2.1")!, port: 53))),
        // The loop guard comes first.
        Case(label: "refuse a loop", name: "example.test", destination: PipelineFixture.listener,
             expected: .answer(.refusedLoop, rcode: 5, answers: 0, rule: none)),
        Case(label: "refuse a loop before the rules", name: "ads.test", destination: PipelineFixture.listener,
             expected: .answer(.refusedLoop, rcode: 5, answers: 0, rule: none)),
        Case(label: "refuse a loop before the zones", name: "nas.home.lan", destination: PipelineFixture.listener, transport: .tcp,
             expected: .answer(.refusedLoop, rcode: 5, answers: 0, rule: none)),
        // The cache: after the rules, keyed by the server.
        Case(label: "cache hit", name: "example.test", cachedUnder: asked, expected: .answer(.cached, rcode: 0, answers: 1, rule: none)),
        Case(label: "cache hit over TCP", name: "example.test", transport: .tcp, cachedUnder: asked, expected: .answer(.cached, rcode: 0, answers: 1, rule: none)),
        Case(label: "cache hit keeps the exception's rule", name: "good.ads.test", cachedUnder: asked, expected: .answer(.cached, rcode: 0, answers: 1, rule: rule(3))),
        Case(label: "cache hit, servers mode key", name: "example.test", upstream: servers, cachedUnder: configured,
             expected: .answer(.cached, rcode: 0, answers: 1, rule: none)),
        Case(label: "cache miss: another server asked", name: "example.test", destination: Endpoint(address: IPAddress("10.53.2.54")!, port: 53),
             cachedUnder: asked, expected: .forward(to: Endpoint(address: IPAddress("10.53.2.54")!, port: 53))),
        Case(label: "cache miss: expired (stale is only for failures)", name: "example.test", cachedUnder: asked, now: 200, expected: .forward(to: asked)),
        Case(label: "rules before the cache: a cached name now blocked", name: "ads.test", cachedUnder: asked,
             expected: .answer(.blocked, rcode: 3, answers: 0, rule: rule(1))),
        Case(label: "server= rule key: cached under the rule's server", name: "corp.test", cachedUnder: corp,
             expected: .answer(.cached, rcode: 0, answers: 1, rule: rule(14))),
        // The known ways around the filter (bypass:), answered before zones and rules.
        Case(label: "DDR _dns.resolver.arpa SVCB: NODATA", name: "_dns.resolver.arpa", type: 64,
             expected: .answer(.bypassed(.ddr), rcode: 0, answers: 0, rule: RuleOrigin(.ddr))),
        Case(label: "DDR _dns.resolver.arpa any type, any case", name: "_DNS.Resolver.ARPA", type: 1,
             expected: .answer(.bypassed(.ddr), rcode: 0, answers: 0, rule: RuleOrigin(.ddr))),
        Case(label: "DDR _dns.<resolver> SVCB", name: "_dns.dns.example", type: 64,
             expected: .answer(.bypassed(.ddr), rcode: 0, answers: 0, rule: RuleOrigin(.ddr))),
        Case(label: "DDR _853._dns.<resolver> SVCB", name: "_853._dns.dns.example", type: 64,
             expected: .answer(.bypassed(.ddr), rcode: 0, answers: 0, rule: RuleOrigin(.ddr))),
        Case(label: "_dns.<name> A is not DDR", name: "_dns.dns.example", type: 1, expected: .forward(to: asked)),
        Case(label: "_853.dns.<name> SVCB is not DDR", name: "_853.xdns.example", type: 64, expected: .forward(to: asked)),
        Case(label: "Firefox canary NXDOMAIN", name: "use-application-dns.net", type: 1,
             expected: .answer(.bypassed(.firefoxCanary), rcode: 3, answers: 0, rule: RuleOrigin(.firefoxCanary))),
        Case(label: "canary subdomain is not the canary", name: "x.use-application-dns.net", expected: .forward(to: asked)),
        Case(label: "Private Relay mask A", name: "mask.icloud.com",
             expected: .answer(.bypassed(.privateRelay), rcode: 3, answers: 0, rule: RuleOrigin(.privateRelay))),
        Case(label: "Private Relay mask-h2 HTTPS over TCP", name: "Mask-H2.iCloud.com", type: 65, transport: .tcp,
             expected: .answer(.bypassed(.privateRelay), rcode: 3, answers: 0, rule: RuleOrigin(.privateRelay))),
        Case(label: "other icloud names pass", name: "mask-api.icloud.com", expected: .forward(to: asked)),
        Case(label: "a bypass name to the relay itself is still a loop", name: "use-application-dns.net",
             destination: PipelineFixture.listener, expected: .answer(.refusedLoop, rcode: 5, answers: 0, rule: none)),
    ]

    /// A pipeline for `c`, with the cache filled as the case says.
    static func pipeline(for c: Case, fixture: PipelineFixture) throws -> QueryPipeline {
        let pipeline = try fixture.pipeline(blockWith: c.blockWith, upstream: c.upstream)
        if let key = c.cachedUnder { fill(pipeline, name: c.name, type: c.type, key: key) }
        return pipeline
    }

    /// Stores an upstream answer for `name` (one A record, TTL 60) at second 100.
    static func fill(_ pipeline: QueryPipeline, name: String, type: UInt16, key: Endpoint) {
        fill(pipeline, name: name, type: type, cacheKey: CacheKey(server: key))
    }

    /// The same, under a key with a clients part (issue 17).
    static func fill(_ pipeline: QueryPipeline, name: String, type: UInt16, cacheKey key: CacheKey) {
        let query = QueryBuilder.query(name: name, type: type, id: 7)!
        let end = query.withUnsafeBytes { Question.end(in: $0)! }
        var answer = Array(query[0..<end])
        answer[2] = 0x81; answer[3] = 0x80
        answer[7] = 1; answer[11] = 0
        answer += [0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 53, 9, 1]
        answer.withUnsafeBytes { pipeline.cache.remember($0, questionEnd: end, flags: 0, key: key, now: 100) }
    }

    static func check(_ run: PipelineRun, _ expected: Expected) {
        switch (run.outcome, expected) {
        case (.answered(_, let source, let rule, _), .answer(let eSource, let rcode, let answers, let eRule)):
            #expect(source == eSource)
            #expect(rule == eRule)
            #expect(run.rcode == rcode)
            #expect(run.answerCount == answers)
            #expect(run.answer[0] == 0x12 && run.answer[1] == 0x34, "the client's ID is kept")
            #expect(run.answer[2] & 0x80 != 0, "QR set")
        case (.forward(let forward, let rule), .forward(let server, let byRule, let alias, let eRule)):
            #expect(forward.server == server)
            #expect(forward.byRule == byRule)
            #expect(run.aliasTarget == alias)
            #expect(forward.cacheable == (alias == nil))
            #expect(rule == eRule)
        default:
            Issue.record("decided \(run.outcome), expected \(expected)")
        }
    }

    /// Each bypass answer can be switched off: the query then goes on like any other.
    @Test func bypassAnswersCanBeSwitchedOff() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        var configuration = try fixture.configuration()
        configuration.bypass.ddr = nil
        configuration.bypass.firefoxCanary = nil
        configuration.bypass.privateRelay = nil
        let pipeline = QueryPipeline(configuration: configuration, rules: fixture.rules, zones: fixture.zones, listeners: [PipelineFixture.listener])
        for (name, type) in [("_dns.resolver.arpa", UInt16(64)), ("use-application-dns.net", 1), ("mask.icloud.com", 1), ("mask-h2.icloud.com", 28)] {
            let run = PipelineRun(pipeline, name: name, type: type, client: "10.53.1.10", destination: Self.asked, transport: .udp)
            guard case .forward = run.outcome else {
                Issue.record("\(name) was answered although its bypass answer is off: \(run.outcome)")
                continue
            }
        }
        // DDR may be answered NXDOMAIN instead.
        configuration.bypass.ddr = .nxdomain
        let nx = QueryPipeline(configuration: configuration, rules: fixture.rules, zones: fixture.zones, listeners: [PipelineFixture.listener])
        #expect(PipelineRun(nx, name: "_dns.resolver.arpa", type: 64, client: "10.53.1.10", destination: Self.asked, transport: .udp).rcode == 3)
    }

    @Test(arguments: cases)
    func decides(_ c: Case) throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let pipeline = try Self.pipeline(for: c, fixture: fixture)
        let run = PipelineRun(pipeline, name: c.name, type: c.type, client: c.client, destination: c.destination, transport: c.transport, now: c.now)
        Self.check(run, c.expected)
    }

    /// `explain` runs the same pipeline: for every case it reaches the same outcome and rule.
    @Test(arguments: cases)
    func explainAgrees(_ c: Case) throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let datapath = PipelineRun(try Self.pipeline(for: c, fixture: fixture), name: c.name, type: c.type, client: c.client,
                                   destination: c.destination, transport: c.transport, edns: 1232, now: c.now)
        let explained = try Explanation(pipeline: try Self.pipeline(for: c, fixture: fixture), name: c.name, type: c.type,
                                        client: IPAddress(c.client), destination: c.destination, transport: c.transport, now: c.now)
        switch (datapath.outcome, explained.outcome) {
        case (.answered(_, let a, let ruleA, _), .answered(_, let b, let ruleB, _)):
            #expect(a == b)
            #expect(ruleA == ruleB)
            #expect(explained.answer?.rcode.rawValue == UInt16(datapath.rcode))
        case (.forward(let a, let ruleA), .forward(let b, let ruleB)):
            #expect(a == b)
            #expect(ruleA == ruleB)
        default:
            Issue.record("datapath \(datapath.outcome), explain \(explained.outcome)")
        }
        #expect(!explained.steps.isEmpty)
    }

    @Test func atLeastFortyCases() { #expect(Self.cases.count >= 40) }

    /// The stages `explain` shows, in order, for the zone-versus-list case of issue 14.
    @Test func explainShowsZoneBeforeRules() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let explained = try Explanation(pipeline: try fixture.pipeline(), name: "nas.home.lan", type: 1, client: nil, destination: Self.asked)
        #expect(explained.steps.map(\.stage) == ["bypass", "zones"])
        #expect(explained.verdict.hasPrefix("answered from a local zone"))
        #expect(explained.matches.map(\.source.line) == [2], "the list's rule is shown as also matching")
        let blocked = try Explanation(pipeline: try fixture.pipeline(), name: "ads.test", type: 1, client: nil, destination: Self.asked)
        #expect(blocked.steps.map(\.stage) == ["bypass", "zones", "rules"])
        let forwarded = try Explanation(pipeline: try fixture.pipeline(), name: "example.test", type: 1, client: nil, destination: Self.asked)
        #expect(forwarded.steps.map(\.stage) == ["bypass", "zones", "rules", "cache", "upstream"])
    }

    /// With no lists and no zones the name is not even spelled out: the cache and the upstream decide.
    @Test func noRulesNoZones() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let pipeline = QueryPipeline(configuration: try fixture.configuration(), rules: .empty, zones: .empty, listeners: [PipelineFixture.listener])
        let run = PipelineRun(pipeline, name: "ads.test", type: 1, client: "10.53.1.10", destination: Self.asked, transport: .udp)
        #expect(run.outcome == .forward(Forward(server: Self.asked, serverIndex: 0, byRule: false, cacheKey: CacheKey(server: Self.asked)), rule: .none))
        let explained = try Explanation(pipeline: pipeline, name: "ads.test", type: 1, client: nil, destination: Self.asked)
        #expect(explained.steps.map(\.result).prefix(3) == ["not a bypass name (DDR, Firefox canary, Private Relay)", "no local zones", "no rules loaded"])
        Self.fill(pipeline, name: "ads.test", type: 1, key: Self.asked)
        let hit = PipelineRun(pipeline, name: "ads.test", type: 1, client: "10.53.1.10", destination: Self.asked, transport: .udp)
        #expect(hit.answerCount == 1)
    }

    @Test func explainRefusesABadName() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        #expect(throws: Explanation.Failure.self) {
            _ = try Explanation(pipeline: try fixture.pipeline(), name: String(repeating: "a", count: 70) + ".test", type: 1, client: nil,
                                destination: Self.asked)
        }
    }

    /// After expiry the pipeline forwards; if the upstream then fails, the stale answer is there.
    @Test func staleAnswerAfterExpiry() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let pipeline = try fixture.pipeline()
        Self.fill(pipeline, name: "example.test", type: 1, key: Self.asked)
        let run = PipelineRun(pipeline, name: "example.test", type: 1, client: "10.53.1.10", destination: Self.asked, transport: .udp, now: 400)
        guard case .forward = run.outcome else { Issue.record("expected a forward, got \(run.outcome)"); return }
        var query = QueryBuilder.query(name: "example.test", type: 1, id: 9)!
        let end = query.withUnsafeBytes { Question.end(in: $0)! }
        query += [UInt8](repeating: 0, count: 1300)
        let stale = query.withUnsafeMutableBytes { pipeline.cache.stale($0, questionEnd: end, flags: 0, key: CacheKey(server: Self.asked), now: 400) }
        #expect(stale != nil)
        #expect(query[9 + 1] == 0 && query[7] == 1, "one answer record")
    }

    /// A popular entry in the last tenth of its TTL asks for a prefetch of the client's query.
    @Test func prefetchNearExpiry() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let pipeline = try fixture.pipeline()
        Self.fill(pipeline, name: "example.test", type: 1, key: Self.asked)
        var prefetched = false
        for now in [101, 102, 103, 157, 158] as [UInt32] {
            let run = PipelineRun(pipeline, name: "example.test", type: 1, client: "10.53.1.10", destination: Self.asked, transport: .udp, now: now)
            guard case .answered(_, .cached, _, let detail) = run.outcome else { Issue.record("expected a hit at \(now)"); return }
            if let forward = detail.prefetch {
                #expect(forward.server == Self.asked)
                #expect(pipeline.cache.prefetchQuery.count > 12)
                #expect(pipeline.cache.prefetchQuery[2] & 0x80 == 0, "the query, not the answer")
                prefetched = true
            }
        }
        #expect(prefetched)
    }

    /// An answer too long for the client's UDP size is cut with TC=1.
    @Test func cachedAnswerTruncatedForTheClient() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let pipeline = try fixture.pipeline()
        let query = QueryBuilder.query(name: "big.test", type: 16, id: 7)!
        let end = query.withUnsafeBytes { Question.end(in: $0)! }
        var answer = Array(query[0..<end])
        answer[2] = 0x81; answer[3] = 0x80
        answer[7] = 4; answer[11] = 0
        for _ in 0..<4 { answer += [0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 60, 0, 201, 200] + [UInt8](repeating: 0x61, count: 200) }
        answer.withUnsafeBytes { pipeline.cache.remember($0, questionEnd: end, flags: 0, key: CacheKey(server: Self.asked), now: 100) }
        let run = PipelineRun(pipeline, name: "big.test", type: 16, client: "10.53.1.10", destination: Self.asked, transport: .udp)
        guard case .answered(let length, .cached, _, let detail) = run.outcome else { Issue.record("\(run.outcome)"); return }
        #expect(detail.truncated && length <= 512 && run.answer[2] & 0x02 != 0)
        let tcp = PipelineRun(pipeline, name: "big.test", type: 16, client: "10.53.1.10", destination: Self.asked, transport: .tcp)
        guard case .answered(_, .cached, _, let whole) = tcp.outcome else { Issue.record("\(tcp.outcome)"); return }
        #expect(!whole.truncated && tcp.answerCount == 4)
    }
}

/// Issue 19: HTTPS (65) and SVCB (64) queries follow what the rules say of the name's addresses.
@Suite struct SVCBQueryTests {
    static func run(_ name: String, type: UInt16, fixture: PipelineFixture) throws -> PipelineRun {
        PipelineRun(try fixture.pipeline(), name: name, type: type, client: "10.53.1.10", destination: PipelineFixture.asked, transport: .udp)
    }

    @Test func httpsFollowsTheRulesOfTheName() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        for type: UInt16 in [64, 65] {
            // Blocked name: blocked the same way.
            let blocked = try Self.run("ads.test", type: type, fixture: fixture)
            guard case .answered(_, .blocked, _, _) = blocked.outcome else { Issue.record("ads.test \(type): \(blocked.outcome)"); continue }
            #expect(blocked.rcode == 3)
            // A hosts line or $dnsrewrite answers its A/AAAA: NODATA, so that no hint leaks.
            for name in ["printer.test", "rw.test"] {
                let rewritten = try Self.run(name, type: type, fixture: fixture)
                guard case .answered(_, .rewritten, _, _) = rewritten.outcome else { Issue.record("\(name) \(type): \(rewritten.outcome)"); continue }
                #expect(rewritten.rcode == 0 && rewritten.answerCount == 0)
            }
        }
    }

    @Test func whenOnlyAAAAIsBlockedTheIPv6HintIsTakenOut() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let typed = try Self.run("typed.test", type: 65, fixture: fixture)
        guard case .forward(let forward, _) = typed.outcome else { Issue.record("\(typed.outcome)"); return }
        #expect(forward.stripHints == SVCBHints.Keys.ipv6.rawValue)
        #expect(!forward.cacheable)
        // A name the rules leave alone: nothing to take out, cached as usual.
        let plain = try Self.run("www.example.test", type: 65, fixture: fixture)
        guard case .forward(let untouched, _) = plain.outcome else { Issue.record("\(plain.outcome)"); return }
        #expect(untouched.stripHints == 0 && untouched.cacheable)
        // The AAAA query itself is blocked, the A query passes.
        guard case .answered(_, .blocked, _, _) = try Self.run("typed.test", type: 28, fixture: fixture).outcome else {
            Issue.record("typed.test AAAA not blocked")
            return
        }
    }
}
