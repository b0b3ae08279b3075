import Foundation
import Testing
@testable import Interception
import RelayCore

/// The nft rules a plan produces, as libnftnl renders them (what `nft --debug=netlink` shows).
@Suite struct NftablesRuleTests {
    static let plan = InterceptionPlan(
        tableName: "tproxy_relay", interfaces: ["lan0", "wlan0"], mark: 0x53, routeTable: 153, rulePriority: 10053,
        listenV4: IPAddress("127.0.0.1")!, listenV6: IPAddress("::1")!,
        captures: [.init(.udp, port: 53, to: 15353)])

    @Test func oneRulePerInterfaceFamilyAndCapture() {
        let rules = Self.plan.rules
        #expect(rules.count == 4)
        #expect(rules.map(\.interface) == ["lan0", "lan0", "wlan0", "wlan0"])
        #expect(rules.map { $0.target.description } == ["127.0.0.1:15353", "[::1]:15353", "127.0.0.1:15353", "[::1]:15353"])
        var v4only = Self.plan
        v4only.listenV6 = nil
        #expect(v4only.rules.count == 2)
    }

    @Test func ipv4RuleExpressions() throws {
        let text = try #require(NftablesMessages.render(Self.plan).first)
        // iifname "lan0", nfproto ipv4 (2), l4proto udp (17), dport 53, 127.0.0.1:15353, mark 0x53
        for expected in ["[ meta load iifname => reg 1 ]", "[ cmp eq reg 1 0x306e616c 0x00000000 0x00000000 0x00000000 ]",
                         "[ meta load nfproto => reg 1 ]", "[ cmp eq reg 1 0x00000002 ]",
                         "[ meta load l4proto => reg 1 ]", "[ cmp eq reg 1 0x00000011 ]",
                         "[ payload load 2b @ transport header + 2 => reg 1 ]", "[ cmp eq reg 1 0x00003500 ]",
                         "[ immediate reg 1 0x0100007f ]", "[ immediate reg 2 0x0000f93b ]",
                         "[ tproxy ip addr reg 1 port reg 2 ]", "[ immediate reg 1 0x00000053 ]", "[ meta set mark with reg 1 ]"] {
            #expect(text.contains(expected), "missing \(expected) in \(text)")
        }
    }

    /// Fail-open depends on the order: tproxy first, the mark after it.
    @Test func tproxyComesBeforeTheMark() throws {
        for text in NftablesMessages.render(Self.plan) {
            let tproxy = try #require(text.range(of: "[ tproxy"))
            let mark = try #require(text.range(of: "[ meta set mark"))
            #expect(tproxy.lowerBound < mark.lowerBound)
        }
    }

    @Test func tcpCaptureMatchesTCP() throws {
        var plan = Self.plan
        plan.interfaces = ["lan0"]
        plan.listenV6 = nil
        plan.captures = [.init(.tcp, port: 53, to: 15353)]
        let text = try #require(NftablesMessages.render(plan).first)
        #expect(text.contains("[ cmp eq reg 1 0x00000006 ]"))  // l4proto tcp
        #expect(text.contains("[ payload load 2b @ transport header + 2 => reg 1 ]"))
    }

    @Test func ipv6RuleTargetsTheIPv6Listener() throws {
        let text = NftablesMessages.render(Self.plan)[1]
        #expect(text.contains("[ cmp eq reg 1 0x0000000a ]"))
        #expect(text.contains("[ immediate reg 1 0x00000000 0x00000000 0x00000000 0x01000000 ]"))
        #expect(text.contains("[ tproxy ip6 addr reg 1 port reg 2 ]"))
    }

    @Test func batchAsksForAnAckPerObject() {
        var sequence: UInt32 = 0
        let table = NetlinkMessageBuffer()
        NftablesMessages.appendTableBatch(named: Self.plan.tableName, to: table, sequence: { sequence += 1; return sequence })
        #expect(table.acksExpected == 1)
        let rules = NetlinkMessageBuffer()
        NftablesMessages.appendRulesBatch(for: Self.plan, to: rules, sequence: { sequence += 1; return sequence })
        // chain + 4 rules; batch begin/end carry no ack.
        #expect(rules.acksExpected == 5)
        #expect(sequence == 3 + 7)
        #expect(rules.length > 0 && rules.length % 4 == 0)
    }

    /// `intercept.local`: the output chain's rules in order (returns before marks), and the
    /// prerouting rules for lo that take only packets carrying the local mark.
    @Test func localCaptureRules() throws {
        var plan = Self.plan
        plan.captures = [.init(.udp, port: 53, to: 15353), .init(.tcp, port: 53, to: 15353)]
        plan.local = .init(mark: 0x55, bypassMark: 0x54, bypassUsers: [107], bypassGroups: [65534])
        #expect(plan.outputRules == [.returnIfMarked(0x54), .returnIfLocalDestination, .returnIfUser(107), .returnIfGroup(65534),
                                     .mark(.udp, port: 53, ipv4Only: false, mark: 0x55), .mark(.tcp, port: 53, ipv4Only: false, mark: 0x55)])
        let lo = plan.rules.filter { $0.interface == "lo" }
        #expect(lo.count == 4 && lo.allSatisfy { $0.requiredMark == 0x55 && $0.mark == 0x55 })
        let text = NftablesMessages.render(plan)
        #expect(text.count == plan.rules.count + plan.outputRules.count)
        let output = Array(text.suffix(plan.outputRules.count))
        #expect(output[0].contains("[ meta load mark => reg 1 ]") && output[0].contains("[ cmp eq reg 1 0x00000054 ]")
                && output[0].contains("[ immediate reg 0 return ]"), "\(output[0])")
        #expect(output[1].contains("[ fib daddr type => reg 1 ]") && output[1].contains("[ cmp eq reg 1 0x00000002 ]"), "\(output[1])")
        #expect(output[2].contains("[ meta load skuid => reg 1 ]") && output[2].contains("[ cmp eq reg 1 0x0000006b ]"), "\(output[2])")
        #expect(output[3].contains("[ meta load skgid => reg 1 ]"), "\(output[3])")
        #expect(output[4].contains("[ cmp eq reg 1 0x00000011 ]") && output[4].contains("[ meta set mark with reg 1 ]")
                && !output[4].contains("nfproto"), "\(output[4])")
        let loRule = try #require(text.first { $0.contains("0x00006f6c") })  // iifname "lo"
        #expect(loRule.contains("[ meta load mark => reg 1 ]") && loRule.contains("[ cmp eq reg 1 0x00000055 ]"), "\(loRule)")
        // Without an IPv6 listener, IPv6 is not marked (it would reach lo with nobody to take it).
        plan.listenV6 = nil
        #expect(plan.outputRules.contains(.mark(.udp, port: 53, ipv4Only: true, mark: 0x55)))
        #expect(NftablesMessages.render(plan).last?.contains("[ cmp eq reg 1 0x00000002 ]") == true)
        // No local capture: no output chain at all.
        #expect(Self.plan.outputRules.isEmpty)
    }
}
