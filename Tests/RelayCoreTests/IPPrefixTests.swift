import Testing
import RelayCore

@Suite struct IPPrefixTests {
    @Test(arguments: [
        ("10.53.1.0/24", "10.53.1.77", true), ("10.53.1.0/24", "10.53.2.1", false),
        ("10.53.1.7", "10.53.1.7", true), ("10.53.1.7", "10.53.1.8", false),
        ("10.53.1.99/24", "10.53.1.1", true), ("0.0.0.0/0", "192.0.2.1", true),
        ("fd53:1::/64", "fd53:1::abcd", true), ("fd53:1::/64", "fd53:2::1", false),
        ("fd53:1::/100", "fd53:1::fff:1", true), ("fd53:1::/100", "fd53:1::1:0:0:1", false),
        ("::/0", "fd53::1", true), ("10.53.1.0/24", "fd53:1::1", false), ("fd53::/16", "10.53.1.1", false),
    ])
    func contains(prefix: String, address: String, expected: Bool) throws {
        let block = try #require(IPPrefix(prefix))
        #expect(block.contains(try #require(IPAddress(address))) == expected)
    }

    @Test(arguments: ["10.53.1.0/33", "10.53.1.0/", "10.53.1.0/-1", "fd53::/129", "banana", "10.53.1/24", "10.53.1.0/2a"])
    func rejects(text: String) {
        #expect(IPPrefix(text) == nil)
    }

    @Test func clearsHostBits() {
        #expect(IPPrefix("10.53.1.99/24")?.description == "10.53.1.0/24")
        #expect(IPPrefix("fd53:1::99/64")?.description == "fd53:1::/64")
    }
}
