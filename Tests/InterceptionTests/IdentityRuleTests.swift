import Testing
@testable import Interception
import RelayCore

/// Issue 17: the rule that takes in answers to the relay's client-address sockets.
@Suite struct IdentityRuleTests {
    static let plan = InterceptionPlan(
        tableName: "tproxy_relay", interfaces: ["lan0"], mark: 0x53, routeTable: 153, rulePriority: 10053,
        listenV4: IPAddress("127.0.0.1")!, listenV6: nil,
        captures: [.init(.udp, port: 53, to: 15353), .init(.tcp, port: 53, to: 15353), .init(.udp, port: 443, to: 15443)],
        identity: .init(mark: 0x56, serverPorts: [53, 5353]))

    @Test func noIdentityNoRules() {
        var plan = Self.plan
        plan.identity = nil
        #expect(plan.identityRules.isEmpty)
        #expect(NftablesMessages.render(plan).count == plan.rules.count)
    }

    @Test func oneRulePerTransportAndServerPortExcludingCapturedPorts() {
        let rules = Self.plan.identityRules
        #expect(rules.map(\.transport) == [.udp, .udp, .tcp, .tcp])
        #expect(rules.map(\.serverPort) == [53, 5353, 53, 5353])
        #expect(rules[0].excludedPorts == [53, 443] && rules[2].excludedPorts == [53])
        #expect(rules.allSatisfy { $0.mark == 0x56 })
    }

    @Test func udpRuleExpressions() throws {
        let rendered = NftablesMessages.render(Self.plan)
        let text = rendered[Self.plan.rules.count]
        // l4proto udp, sport 53, dport != 53, dport != 443, socket transparent == 1, mark 0x56
        let expected = ["[ meta load l4proto => reg 1 ]", "[ cmp eq reg 1 0x00000011 ]",
                        "[ payload load 2b @ transport header + 0 => reg 1 ]", "[ cmp eq reg 1 0x00003500 ]",
                        "[ payload load 2b @ transport header + 2 => reg 1 ]", "[ cmp neq reg 1 0x00003500 ]", "[ cmp neq reg 1 0x0000bb01 ]",
                        "[ socket load transparent => reg 1 ]", "[ cmp eq reg 1 0x00000001 ]",
                        "[ immediate reg 1 0x00000056 ]", "[ meta set mark with reg 1 ]"]
        var position = text.startIndex
        for part in expected {
            let found = try #require(text.range(of: part, range: position..<text.endIndex), "missing \(part) (in order) in \(text)")
            position = found.upperBound
        }
        #expect(!text.contains("[ tproxy"), "answers are marked and routed, never diverted to a listener")
    }
}
