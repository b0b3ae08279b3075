import Configuration
import Dnstap
import Foundation
import Glibc
import LinuxNet
import Logging
import RelayCore
import Rules
import Testing
@testable import Relay

/// The dnstap writer thread between the workers' rings and the output: events from two rings
/// reach a file whole (decoded by dnstap-ldns), the deciding rule's list and text travel as the
/// Policy, and while the collector is absent events are dropped and counted, never queued without
/// bound.
@Suite(.serialized) struct DnstapWriterTests {
    static let query = DnstapOutputTests.query
    static var answer: [UInt8] {
        var a = query
        a[2] = 0x81; a[3] = 0x83  // NXDOMAIN
        return a
    }

    static func settings(_ target: Configuration.Dnstap.Target, messages: Set<Configuration.Dnstap.Message> = [.clientResponse, .clientQuery]) -> Configuration.Dnstap {
        var s = Configuration.Dnstap()
        s.target = target
        s.identity = "router-7"
        s.messages = messages
        s.queue = 64
        return s
    }

    @Test func eventsFromTwoRingsReachTheFileWithTheirPolicy() throws {
        let dir = NSTemporaryDirectory() + "dnstap-writer-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let list = dir + "/ads.txt"
        try "! ads\n||www.lab.test^\n".write(toFile: list, atomically: true, encoding: .utf8)
        let file = dir + "/tap.fstrm"
        let writer = DnstapWriter(settings: Self.settings(.file(file)), lists: [list], logger: Logger(label: "test"))
        let rings = [writer.makeRing(), writer.makeRing()]
        #expect(rings[0].wants(.clientQuery) && rings[0].wants(.clientResponse) && !rings[0].wants(.forwarderQuery))
        try writer.start()
        let client = Endpoint(address: IPAddress("10.53.1.2")!, port: 40000)
        let client6 = Endpoint(address: IPAddress("fd53:1::2")!, port: 40001)
        let asked = Endpoint(address: IPAddress("10.53.3.53")!, port: 53)
        let asked6 = Endpoint(address: IPAddress("fd53:3::53")!, port: 53)
        let now = SystemInfo.monotonicNanoseconds()
        _ = Self.query.withUnsafeBytes { rings[0].push(DnstapEvent(kind: .clientQuery, transport: .udp, queryAddress: client, responseAddress: asked, queryTime: now), message: $0) }
        Self.answer.withUnsafeBytes {
            rings[0].push(DnstapEvent(kind: .clientResponse, transport: .udp, queryAddress: client, responseAddress: asked, queryTime: now,
                                      responseTime: now + 40_000, policyAction: DnstapMessage.Policy.Action.nxdomain.rawValue, ruleList: 0, ruleLine: 2), message: $0)
            rings[1].push(DnstapEvent(kind: .clientResponse, transport: .tcp, queryAddress: client6, responseAddress: asked6, queryTime: now,
                                      responseTime: now + 50_000, policyAction: DnstapMessage.Policy.Action.nxdomain.rawValue,
                                      ruleList: BuiltinRule.list, ruleLine: BuiltinRule.firefoxCanary.rawValue), message: $0)
        }
        #expect(DnstapOutputTests.waitFor { writer.totals.sent == 3 })
        writer.stop()
        #expect(writer.totals.sent == 3 && writer.totals.dropped == 0)
        #expect(writer.summary == "dnstap to file:\(file): 3 frames sent, 0 dropped")
        let text = try DnstapOutputTests.decode(file)
        for expected in ["identity: \"router-7\"", "version: \"tproxy-relay \(BuildInfo.version)\"", "type: CLIENT_QUERY", "type: CLIENT_RESPONSE",
                         "query_address: \"10.53.1.2\"", "response_address: \"10.53.3.53\"", "query_address: \"fd53:1::2\"",
                         "socket_protocol: TCP", "rcode: NXDOMAIN"] {
            #expect(text.contains(expected), "'\(expected)' not in:\n\(text)")
        }
        // Wall-clock times: this year's, not the monotonic clock's.
        let year = Calendar(identifier: .gregorian).component(.year, from: Date())
        #expect(text.contains("query_time: !!timestamp \(year)-"), "\(text)")
        // dnstap-ldns does not print the policy: its bytes are looked for. Field 15: type (the
        // list), rule (its text), action NXDOMAIN, match QNAME.
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        func field(_ tag: UInt8, _ text: String) -> [UInt8] { [tag, UInt8(text.utf8.count)] + Array(text.utf8) }
        for policy in [field(0x0a, "ads.txt") + field(0x12, "||www.lab.test^") + [0x18, 1, 0x20, 1],
                       field(0x0a, "bypass") + field(0x12, BuiltinRule.firefoxCanary.key) + [0x18, 1, 0x20, 1]] {
            let found = (0...(bytes.count - policy.count)).contains { Array(bytes[$0..<($0 + policy.count)]) == policy }
            #expect(found, "policy \(String(decoding: policy.dropFirst(2), as: UTF8.self)) not in the file")
        }
    }

    @Test func anAbsentCollectorDropsAndCountsAndRingsStayBounded() throws {
        let socket = NSTemporaryDirectory() + "nobody-\(UUID().uuidString.prefix(8)).sock"
        let writer = DnstapWriter(settings: Self.settings(.unix(socket)), lists: [], logger: Logger(label: "test"))
        let ring = writer.makeRing()
        try writer.start()  // a collector that is absent is not an error: it may start later
        let client = Endpoint(address: IPAddress("10.53.1.2")!, port: 40000)
        let asked = Endpoint(address: IPAddress("10.53.3.53")!, port: 53)
        var pushed = 0
        for _ in 0..<5000 {
            if Self.answer.withUnsafeBytes({ ring.push(DnstapEvent(kind: .clientResponse, transport: .udp, queryAddress: client, responseAddress: asked,
                                                                   queryTime: 1, responseTime: 2), message: $0) }) { pushed += 1 }
        }
        #expect(DnstapOutputTests.waitFor { writer.totals.dropped == 5000 })
        writer.stop()
        let totals = writer.totals
        #expect(totals.sent == 0 && totals.dropped == 5000 && !totals.connected)
        #expect(ring.waiting == 0)
        #expect(pushed > 0)
    }

    /// The policy names a list by its file name, by its path only where two lists share a name.
    @Test func policyTypesAreFileNamesUnlessTheyCollide() {
        #expect(DnstapEncoder.policyTypes(["/etc/lists/ads.txt", "/etc/lists/oisd.txt", "/srv/b/ads.txt", "hosts"])
                == ["/etc/lists/ads.txt", "oisd.txt", "/srv/b/ads.txt", "hosts"])
    }

    @Test func aFileThatCannotBeWrittenStopsStartUp() {
        let writer = DnstapWriter(settings: Self.settings(.file("/nonexistent-\(UUID().uuidString.prefix(8))/tap.fstrm")), lists: [],
                                  logger: Logger(label: "test"))
        #expect(throws: RelayError.self) { try writer.start() }
    }
}
