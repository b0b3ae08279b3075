import Configuration
import Interception
import RelayCore
import Testing
@testable import Relay

/// Issue 17: `check` says where `client_identity: source` can work, from the route to each server.
@Suite struct SourceIdentityCheckTests {
    static func configuration(_ upstream: String) throws -> Configuration {
        try ConfigurationParser(file: "relay.yaml").parse("intercept:\n  interfaces: [lan0]\nupstream:\n" + upstream)
    }

    static let routes: [String: RouteLookup] = [
        "10.53.4.53": RouteLookup(interface: "wan0", gateway: IPAddress("10.53.2.53")),
        "10.53.2.53": RouteLookup(interface: "wan0", gateway: nil),
        "10.53.1.50": RouteLookup(interface: "lan0", gateway: nil),
    ]

    static func notes(_ upstream: String) throws -> [SourceIdentityCheck.Note] {
        SourceIdentityCheck.notes(try configuration(upstream)) { routes["\($0)"] }
    }

    @Test func nothingToSayWithoutSource() throws {
        #expect(try Self.notes("  client_identity: subnet\n").isEmpty)
    }

    @Test func eachServerByItsRoute() throws {
        let notes = try Self.notes("  mode: servers\n  client_identity: source\n  servers: [10.53.4.53, 10.53.2.53, 10.53.1.50, 10.53.9.9]\n")
        #expect(notes.count == 4)
        #expect(!notes[0].isWarning && notes[0].text.contains("not on a directly connected network (next hop 10.53.2.53 on wan0)"))
        #expect(!notes[1].isWarning && notes[1].text.contains("directly connected on wan0"))
        #expect(notes[2].isWarning && notes[2].text.contains("lan0, an intercepted interface"))
        #expect(notes[3].isWarning && notes[3].text.contains("no route"))
    }

    @Test func onlyServersThatSendFromClientsAddresses() throws {
        let notes = try Self.notes("  mode: servers\n  servers: [10.53.4.53, {address: 10.53.1.50, client_identity: source}]\n")
        #expect(notes.count == 1 && notes[0].text.contains("10.53.1.50"))
    }

    @Test func originalModeSaysItDependsOnEachServer() throws {
        let notes = try Self.notes("  client_identity: source\n")
        #expect(notes.count == 1 && notes[0].text.contains("mode original"))
    }
}
