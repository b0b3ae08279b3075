import Configuration
import DNS
import RelayCore
import Testing
@testable import Pipeline

/// Issue 17: what each upstream learns of the client decides whose cache entry its answer is;
/// no client is ever given an answer obtained with another client's identity.
@Suite struct ClientIdentityTests {
    static let asked = PipelineFixture.asked
    static let a = IPAddress("10.53.1.2")!
    static let neighbour = IPAddress("10.53.1.3")!
    static let elsewhere = IPAddress("10.53.7.9")!

    @Test func keysFollowTheIdentity() {
        let none = UpstreamChoice(mode: .original, servers: [], identity: .none)
        #expect(none.first(destination: Self.asked, ruleServer: nil, client: Self.a).cacheKey == CacheKey(server: Self.asked))
        let source = UpstreamChoice(mode: .original, servers: [], identity: .source)
        let sourced = source.first(destination: Self.asked, ruleServer: nil, client: Self.a)
        #expect(sourced.identity == .source)
        #expect(sourced.cacheKey.clients == IPPrefix("10.53.1.2/32")! && !sourced.cacheKey.allowsShared)
        let subnet = UpstreamChoice(mode: .original, servers: [], identity: .subnet, subnetPrefixV4: 24, subnetPrefixV6: 56)
        let key = subnet.first(destination: Self.asked, ruleServer: nil, client: Self.a).cacheKey
        #expect(key.clients == IPPrefix("10.53.1.0/24")! && key.allowsShared && key.shared.isShared)
        #expect(subnet.subnet(of: IPAddress("fd53:1:2:3ff::9")!) == IPPrefix("fd53:1:2:300::/56")!)
    }

    @Test func serversModeKeysByTheNarrowestIdentityAndRetriesCarryTheirOwn() {
        let one = Endpoint(address: IPAddress("10.53.2.1")!, port: 53), two = Endpoint(address: IPAddress("10.53.2.2")!, port: 53)
        let choice = UpstreamChoice(mode: .servers, servers: [one, two], identities: [.none, .source], identity: .none)
        let forward = choice.first(destination: Self.asked, ruleServer: nil, client: Self.a)
        #expect(forward.server == one && forward.identity == .none)
        #expect(forward.cacheKey.clients == IPPrefix("10.53.1.2/32")!, "the second server may answer it: keyed per client")
        #expect(choice.next(after: 0)?.identity == .source)
        // A server= rule naming a configured server gets that server's identity; others the global one.
        #expect(choice.first(destination: Self.asked, ruleServer: two, client: Self.a).identity == .source)
        #expect(choice.first(destination: Self.asked, ruleServer: Self.asked, client: Self.a).identity == .none)
    }

    /// The table takes in answers from port 53 and the configured servers' ports only.
    @Test func sourceToAServerOnAnotherPortLeavesFromThisHost() {
        var choice = UpstreamChoice(mode: .original, servers: [], identity: .source)
        let odd = Endpoint(address: IPAddress("10.53.3.53")!, port: 5353)
        #expect(choice.first(destination: Self.asked, ruleServer: odd, client: Self.a).identity == .none)
        #expect(choice.first(destination: Self.asked, ruleServer: Endpoint(address: odd.address, port: 53), client: Self.a).identity == .source)
        choice.sourcePorts = [53, 5353]
        #expect(choice.first(destination: Self.asked, ruleServer: odd, client: Self.a).identity == .source)
    }

    static func pipeline(_ identity: String) throws -> (QueryPipeline, PipelineFixture) {
        let fixture = try PipelineFixture()
        let configuration = try fixture.configuration(upstream: "upstream:\n  mode: original\n  client_identity: \(identity)\n")
        return (QueryPipeline(configuration: configuration, rules: .empty, zones: .empty, listeners: [PipelineFixture.listener]), fixture)
    }

    static func store(_ pipeline: QueryPipeline, _ key: CacheKey) {
        QueryPipelineTests.fill(pipeline, name: "example.test", type: 1, cacheKey: key)
    }

    static func cached(_ pipeline: QueryPipeline, for client: IPAddress) -> Bool {
        let run = PipelineRun(pipeline, name: "example.test", type: 1, client: "\(client)", destination: asked, transport: .udp)
        if case .answered(_, .cached, _, _) = run.outcome { return true }
        return false
    }

    @Test func withSourceAnAnswerIsTheAskingClientsOnly() throws {
        let (pipeline, fixture) = try Self.pipeline("source")
        defer { fixture.remove() }
        Self.store(pipeline, pipeline.upstream.key(Self.asked, .source, Self.a))
        #expect(Self.cached(pipeline, for: Self.a))
        #expect(!Self.cached(pipeline, for: Self.neighbour))
        #expect(!Self.cached(pipeline, for: Self.elsewhere))
    }

    @Test func withSubnetAnAnswerIsTheSubnetsOrEveryonesByItsScope() throws {
        let (pipeline, fixture) = try Self.pipeline("subnet")
        defer { fixture.remove() }
        // Scope /24 (≤ the /24 sent): the client's subnet, not another.
        Self.store(pipeline, pipeline.upstream.key(Self.asked, .subnet, Self.a))
        #expect(Self.cached(pipeline, for: Self.neighbour))
        #expect(!Self.cached(pipeline, for: Self.elsewhere))
        // Scope 0: every client.
        Self.store(pipeline, pipeline.upstream.key(Self.asked, .subnet, Self.a).shared)
        #expect(Self.cached(pipeline, for: Self.elsewhere))
    }

    @Test func explainSaysWhatTheUpstreamSees() throws {
        for (identity, expected) in [("source", "leaves from the client's own address 10.53.1.2"), ("subnet", "carries ECS 10.53.1.0/24")] {
            let (pipeline, fixture) = try Self.pipeline(identity)
            defer { fixture.remove() }
            let explained = try Explanation(pipeline: pipeline, name: "example.test", type: 1, client: Self.a, destination: Self.asked)
            let upstream = try #require(explained.steps.last)
            #expect(upstream.stage == "upstream" && upstream.result.contains(expected), "\(upstream.result)")
            let cache = try #require(explained.steps.first { $0.stage == "cache" })
            #expect(cache.result.contains(identity == "source" ? "for 10.53.1.2/32 only" : "for 10.53.1.0/24 (or for every client"), "\(cache.result)")
        }
    }

    @Test func withNoneOneAnswerServesAll() throws {
        let (pipeline, fixture) = try Self.pipeline("none")
        defer { fixture.remove() }
        Self.store(pipeline, CacheKey(server: Self.asked))
        #expect(Self.cached(pipeline, for: Self.a) && Self.cached(pipeline, for: Self.elsewhere))
    }
}
