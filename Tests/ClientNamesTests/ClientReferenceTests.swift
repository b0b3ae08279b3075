import RelayCore
import Testing
@testable import ClientNames

/// `explain --client` and the dashboard's explain form: an address, a name the files give, or an
/// error that says which of the two it is not.
@Suite struct ClientReferenceTests {
    static let table = ClientNameTable([
        (.hosts, HostsFile.parse(Array("10.53.1.2 kids-ipad\nfd53:1::2 kids-ipad\n10.53.1.3 printer.lan\n".utf8), file: "hosts")),
    ])

    struct Case: CustomTestStringConvertible, Sendable {
        let text: String
        let expected: ClientReference
        let address: String?
        var testDescription: String { "'\(text)'" }
    }

    static let cases: [Case] = [
        Case(text: "10.53.1.9", expected: .address(IPAddress("10.53.1.9")!), address: "10.53.1.9"),
        Case(text: "fd53:1::9", expected: .address(IPAddress("fd53:1::9")!), address: "fd53:1::9"),
        Case(text: "printer.lan", expected: .named("printer.lan", [IPAddress("10.53.1.3")!]), address: "10.53.1.3"),
        // Names are matched as the files are read: case folded, a trailing dot dropped.
        Case(text: "Printer.LAN.", expected: .named("printer.lan", [IPAddress("10.53.1.3")!]), address: "10.53.1.3"),
        // Two addresses, in file order: explained for the first.
        Case(text: "kids-ipad", expected: .named("kids-ipad", [IPAddress("10.53.1.2")!, IPAddress("fd53:1::2")!]), address: "10.53.1.2"),
        Case(text: "nobody-here", expected: .unknownName("nobody-here"), address: nil),
        Case(text: "10.53.1.999", expected: .badAddress, address: nil),
        Case(text: "10.53.1", expected: .badAddress, address: nil),
        Case(text: "fd53::1::2", expected: .badAddress, address: nil),
        Case(text: "not a name!", expected: .invalid, address: nil),
        Case(text: "", expected: .invalid, address: nil),
        Case(text: ".", expected: .invalid, address: nil),
    ]

    @Test(arguments: cases)
    func resolves(_ c: Case) {
        let reference = ClientReference(c.text, names: Self.table)
        #expect(reference == c.expected)
        #expect(reference.address == c.address.flatMap(IPAddress.init))
        #expect((reference.problem == nil) == (c.address != nil))
    }

    @Test func problemsSayWhatIsMissing() {
        #expect(ClientReference("nobody-here", names: Self.table).problem == "no clients.names hosts or leases file gives 'nobody-here' an address")
        #expect(ClientReference("a b", names: Self.table).problem == "it is neither an IP address nor a client name")
        #expect(ClientReference("10.53.1", names: Self.table).problem == "it is not an IP address")
        #expect(ClientReference("kids-ipad", names: .empty).problem != nil, "without files no name resolves")
    }
}
