import Dnstap
import Foundation
import RelayCore
import Testing

/// dnstap frames as a real decoder reads them: written to a Frame Streams file (START, frames,
/// STOP) and read back by Debian's `dnstap-ldns`, plus the protobuf bytes of a small event.
@Suite struct DnstapMessageTests {
    static let query: [UInt8] = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x77, 0x77, 0x77, 3, 0x6c, 0x61, 0x62, 4, 0x74, 0x65, 0x73, 0x74, 0, 0, 1, 0, 1]
    static var response: [UInt8] {
        var r = query
        r[2] = 0x81; r[3] = 0x83  // QR RD RA, NXDOMAIN
        return r
    }

    static func encode(_ message: DnstapMessage) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let length = buffer.withUnsafeMutableBytes { message.encode(identity: Array("router".utf8), version: Array("0.1.0".utf8), into: $0) }
        return length.map { Array(buffer[0..<$0]) }
    }

    typealias PolicyText = (type: String, rule: String, action: DnstapMessage.Policy.Action)

    static func responseMessage(client: String?, asked: String, policy: PolicyText?) -> [UInt8] {
        let type = Array((policy?.type ?? "").utf8), rule = Array((policy?.rule ?? "").utf8)
        return query.withUnsafeBytes { q in
            response.withUnsafeBytes { r in
                type.withUnsafeBytes { t in
                    rule.withUnsafeBytes { u in
                        encode(DnstapMessage(kind: .clientResponse, transport: .udp,
                                             queryAddress: client.map { Endpoint(parsing: $0, defaultPort: 0)! },
                                             responseAddress: Endpoint(parsing: asked, defaultPort: 53)!,
                                             queryTime: 1_764_600_000_123_456_789, responseTime: 1_764_600_000_124_000_000,
                                             queryMessage: q, responseMessage: r,
                                             policy: policy.map { DnstapMessage.Policy(type: t, rule: u, action: $0.action) }))!
                    }
                }
            }
        }
    }

    @Test func theBytesOfASmallEvent() throws {
        let frame = try #require(Self.encode(DnstapMessage(kind: .clientQuery, transport: .tcp,
                                                           queryAddress: Endpoint(parsing: "10.53.1.2:40000", defaultPort: 0)!,
                                                           responseAddress: Endpoint(parsing: "10.53.3.53", defaultPort: 53)!,
                                                           queryTime: 2_000_000_001)))
        // identity, version, then message (14) and type (15) = MESSAGE.
        #expect(Array(frame.prefix(8)) == [0x0a, 6] + Array("router".utf8))
        #expect(frame.suffix(2) == [0x78, 0x01])
        let message: [UInt8] = [0x08, 5, 0x10, 1, 0x18, 2, 0x22, 4, 10, 53, 1, 2, 0x2a, 4, 10, 53, 3, 53,
                                0x30, 0xc0, 0xb8, 0x02, 0x38, 53, 0x40, 2, 0x4d, 1, 0, 0, 0]
        #expect(Array(frame[15..<(15 + 2 + message.count)]) == [0x72, UInt8(message.count)] + message)
    }

    /// The policy (dnstap-ldns 0.2 does not print it): type, rule, action NXDOMAIN, match QNAME.
    @Test func thePolicyOfABlockedQuery() throws {
        let frame = Self.responseMessage(client: "10.53.1.2:1", asked: "10.53.2.53",
                                         policy: ("ads.txt", "||x^", .nxdomain))
        let policy: [UInt8] = [0x0a, 7] + Array("ads.txt".utf8) + [0x12, 4] + Array("||x^".utf8) + [0x18, 1, 0x20, 1]
        let tagged: [UInt8] = [0x7a, UInt8(policy.count)] + policy
        #expect(frame.count > tagged.count)
        let found = (0...(frame.count - tagged.count)).contains { Array(frame[$0..<($0 + tagged.count)]) == tagged }
        #expect(found, "field 15 (policy) with its four fields")
    }

    /// A forwarder message from a wildcard-bound socket leaves the query address and port out;
    /// the family comes from the upstream's address.
    @Test func anUnknownQueryAddressIsLeftOut() throws {
        let frame = Self.responseMessage(client: nil, asked: "[fd53:2::53]:53", policy: nil)
        let withAddress = Self.responseMessage(client: "[fd53:1::2]:7", asked: "[fd53:2::53]:53", policy: nil)
        // Field 4 (2 + 16 bytes) and field 6 (2 bytes); the Message's length then takes a second byte.
        #expect(withAddress.count - frame.count == 18 + 2 + 1)
        // type CLIENT_RESPONSE, family INET6, protocol UDP, then response_address (field 5) at once.
        let start: [UInt8] = [0x08, 6, 0x10, 2, 0x18, 1, 0x2a, 16]
        #expect((0...(frame.count - start.count)).contains { Array(frame[$0..<($0 + start.count)]) == start })
    }

    /// A policy with no type and no rule text: those fields are left out (the action stays).
    @Test func aPolicyWithoutARuleCarriesItsActionOnly() throws {
        let frame = Self.responseMessage(client: "10.53.1.2:1", asked: "10.53.2.53", policy: ("", "", .localData))
        let tagged: [UInt8] = [0x7a, 4, 0x18, 6, 0x20, 1]
        #expect((0...(frame.count - tagged.count)).contains { Array(frame[$0..<($0 + tagged.count)]) == tagged })
    }

    @Test func aFrameThatDoesNotFitIsRefused() {
        let message = Self.query.withUnsafeBytes { q in
            DnstapMessage(kind: .clientQuery, transport: .udp, queryAddress: Endpoint(parsing: "10.53.1.2", defaultPort: 1)!,
                          responseAddress: Endpoint(parsing: "10.53.2.53", defaultPort: 53)!, queryTime: 1, queryMessage: q)
        }
        var small = [UInt8](repeating: 0, count: 40)
        #expect(small.withUnsafeMutableBytes { message.encode(identity: [], version: [], into: $0) } == nil)
    }

    /// Debian's dnstap-ldns decodes a file of our frames: addresses, ports, protocol, times, messages.
    @Test func dnstapLdnsReadsOurFrames() throws {
        let tool = "/usr/bin/dnstap-ldns"
        try #require(FileManager.default.isExecutableFile(atPath: tool), "dnstap-ldns is missing: scripts/setup.sh installs it")
        var file = FrameStreams.encode(.init(.start, contentTypes: [FrameStreams.dnstapContentType]))
        let frames = [
            Self.responseMessage(client: "10.53.1.2:40000", asked: "10.53.3.53", policy: nil),
            Self.responseMessage(client: "[fd53:1::2]:40001", asked: "[fd53:3::53]:53",
                                 policy: ("/etc/lists/ads.txt", "||www.lab.test^", .nxdomain)),
        ]
        for frame in frames { file += [UInt8(frame.count >> 24), UInt8(frame.count >> 16 & 0xff), UInt8(frame.count >> 8 & 0xff), UInt8(frame.count & 0xff)] + frame }
        file += FrameStreams.encode(.init(.stop))
        let path = NSTemporaryDirectory() + "dnstap-\(UUID().uuidString).fstrm"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(file).write(to: URL(fileURLWithPath: path))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = ["-r", path, "-y"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(output)")
        for expected in ["type: MESSAGE", "identity: \"router\"", "version: \"0.1.0\"", "type: CLIENT_RESPONSE",
                         "query_time: !!timestamp 2025-12-01 14:40:00.123456", "response_time: !!timestamp 2025-12-01 14:40:00.124000",
                         "socket_family: INET\n", "socket_protocol: UDP", "query_address: \"10.53.1.2\"", "response_address: \"10.53.3.53\"",
                         "query_port: 40000", "response_port: 53", "socket_family: INET6", "query_address: \"fd53:1::2\"",
                         "response_address: \"fd53:3::53\"", "query_port: 40001", ";www.lab.test.\tIN\tA", "rcode: NXDOMAIN"] {
            #expect(output.contains(expected), "'\(expected)' not in:\n\(output)")
        }
    }
}
