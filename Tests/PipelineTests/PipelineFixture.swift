import Configuration
import DNS
import Foundation
import RelayCore
import Rules
import Zones
@testable import Pipeline

/// Lists, a zone and a configuration written to a temporary directory, as a user would write
/// them, and pipelines built from them. No sockets, no root.
struct PipelineFixture {
    static let listener = Endpoint(address: IPAddress("127.0.0.1")!, port: 15353)
    static let asked = Endpoint(address: IPAddress("10.53.2.53")!, port: 53)

    /// Line numbers matter: the cases name them.
    static let blockList = """
        ||ads.test^
        ||home.lan^
        @@||good.ads.test^
        0.0.0.0 tracker.test
        192.168.5.5 printer.test
        ||rw.test^$dnsrewrite=10.53.9.9
        ||rw.test^$dnsrewrite=NOERROR;AAAA;fd53::9
        ||nx.test^$dnsrewrite=NXDOMAIN
        ||alias.test^$dnsrewrite=www.example.test
        ||alias-local.test^$dnsrewrite=nas.home.lan
        ||kids.test^$client=10.53.1.20
        ||important.test^$important
        @@||important.test^
        server=/corp.test/10.53.3.53
        /^regex[0-9]+\\.test$/
        ||typed.test^$dnstype=AAAA
        ||both.test^$important
        @@||both.test^$important
        ||refused.test^$dnsrewrite=REFUSED
        server=/nxlocal.test/
        """
    static let kidsList = "||games.test^\n"
    static let zone = """
        $TTL 300
        @        IN SOA router.home.lan. admin.home.lan. ( 1 3600 600 86400 60 )
                 IN NS  router
        router   IN A   192.168.1.1
        nas      IN A   192.168.1.10
        nas      IN AAAA fd00::10
        files    IN CNAME nas
        *.dev    IN A   192.168.1.99
        """

    let directory: String
    let rules: RuleSet
    let zones: LocalZones

    init() throws {
        directory = NSTemporaryDirectory() + "pipeline-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory + "/zones", withIntermediateDirectories: true)
        try Self.blockList.write(toFile: directory + "/block.txt", atomically: true, encoding: .utf8)
        try Self.kidsList.write(toFile: directory + "/kids.txt", atomically: true, encoding: .utf8)
        try Self.zone.write(toFile: directory + "/zones/home.lan.zone", atomically: true, encoding: .utf8)
        rules = try RuleSetBuilder.load(paths: [directory + "/block.txt", directory + "/kids.txt"])
        let loaded = ZoneLoader.load(directory: directory + "/zones")
        precondition(loaded.errors.isEmpty, "\(loaded.errors)")
        zones = loaded.zones
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }

    /// The configuration: `extra` is YAML appended under `filters:`; `upstream` replaces the
    /// upstream section.
    func configuration(blockWith: String = "nxdomain", upstream: String = "upstream:\n  mode: original\n") throws -> Configuration {
        let yaml = """
            \(upstream)filters:
              lists: [block.txt, kids.txt]
              block_with: \(blockWith)
              ttl: 10
              clients:
                - match: [10.53.1.30/32]
                  lists: [kids.txt]
            cache:
              entries: 64
            """
        return try ConfigurationParser(file: directory + "/relay.yaml").parse(yaml)
    }

    func pipeline(blockWith: String = "nxdomain", upstream: String = "upstream:\n  mode: original\n") throws -> QueryPipeline {
        QueryPipeline(configuration: try configuration(blockWith: blockWith, upstream: upstream), rules: rules, zones: zones,
                      listeners: [Self.listener])
    }

    /// The origin of line `line` of list `list` (0: block.txt, 1: kids.txt).
    static func rule(_ list: UInt16, _ line: UInt32) -> RuleOrigin { RuleOrigin(list: list, line: line) }
}

/// A query on the wire, run through a pipeline as the datapath runs it.
struct PipelineRun {
    var outcome: QueryOutcome
    var answer: [UInt8]
    /// The name an alias asks for instead.
    var aliasTarget: String?

    init(_ pipeline: QueryPipeline, name: String, type: UInt16, client: String, destination: Endpoint, transport: Transport,
         edns: UInt16? = nil, now: UInt32 = 100) {
        let wire = QueryBuilder.query(name: name, type: type, id: 0x1234, ednsPayloadSize: edns)!
        guard case .query(let query) = wire.withUnsafeBytes({ QueryParser.classify($0) }) else { fatalError("not a query: \(name)") }
        let facts = QueryFacts(query: query, client: Endpoint(address: IPAddress(client)!, port: 40000), destination: destination, transport: transport)
        var buffer = [UInt8](repeating: 0, count: 4160)
        buffer.replaceSubrange(0..<wire.count, with: wire)
        outcome = buffer.withUnsafeMutableBytes { pipeline.decide(facts, in: $0, queryLength: wire.count, now: now) }
        if case .answered(let length, _, _, _) = outcome { answer = Array(buffer[0..<length]) } else { answer = [] }
        if case .forward(let forward, _) = outcome { aliasTarget = pipeline.aliasTarget(forward) }
    }

    var rcode: UInt8 { answer.count >= 4 ? answer[3] & 0x0f : 0xff }
    var answerCount: Int { answer.count >= 8 ? Int(answer[6]) << 8 | Int(answer[7]) : -1 }
    var isAuthoritative: Bool { answer.count >= 3 && answer[2] & 0x04 != 0 }
}
