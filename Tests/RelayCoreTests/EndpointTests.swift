import Testing
@testable import RelayCore

@Suite struct EndpointTests {
    @Test(arguments: [
        ("10.53.2.53", "10.53.2.53:53"),
        ("10.53.2.53:5353", "10.53.2.53:5353"),
        ("fd53:2::53", "[fd53:2::53]:53"),
        ("[fd53:2::53]", "[fd53:2::53]:53"),
        ("[fd53:2::53]:8053", "[fd53:2::53]:8053"),
        ("::1", "[::1]:53"),
    ])
    func parsesAndFormats(input: String, expected: String) {
        #expect(Endpoint(parsing: input, defaultPort: 53)?.description == expected)
    }

    @Test(arguments: ["", "10.53.2", "10.53.2.53:", "10.53.2.53:0", "10.53.2.53:65536", "[10.53.2.53]:53",
                      "[fd53::1", "fd53::1:53:zz", "host.example:53", "[fd53::1]x", "10.53.2.256"])
    func rejects(input: String) {
        #expect(Endpoint(parsing: input, defaultPort: 53) == nil)
    }

    @Test func ipv4Octets() {
        let a = IPv4Address(10, 53, 1, 2)
        #expect(a.octets == [10, 53, 1, 2])
        #expect(IPAddress.v4(a).description == "10.53.1.2")
        #expect(IPAddress("10.53.1.2") == .v4(a))
    }

    @Test func ipv6Bytes() {
        let a = IPAddress("fd53:1::2")
        guard case .v6(let v6)? = a else {
            Issue.record("not IPv6")
            return
        }
        #expect(v6.bytes == [0xfd, 0x53, 0, 1] + [UInt8](repeating: 0, count: 11) + [2])
        #expect(IPv6Address(bytes: v6.bytes) == v6)
        #expect(a?.description == "fd53:1::2")
    }

    @Test func errorsPrintTheirReason() {
        let error = RelayError(.noSuchInterface, "interface lan9 does not exist")
        #expect(error.description == "interface lan9 does not exist")
        #expect(error.code == .noSuchInterface)
        #expect(error.code != .permissionDenied)
    }
}
