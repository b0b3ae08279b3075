import Testing
@testable import Interception
import RelayCore

/// Issue 19: the rules that close DoT/DoQ and known DoH addresses, and the address files.
@Suite struct BypassRuleTests {
    static let plan = InterceptionPlan(
        tableName: "tproxy_relay", interfaces: ["lan0"], mark: 0x53, routeTable: 153, rulePriority: 10053,
        listenV4: IPAddress("127.0.0.1")!, listenV6: nil,
        captures: [.init(.udp, port: 53, to: 15353), .init(.tcp, port: 53, to: 15353), .init(.udp, port: 443, to: 15443)],
        bypass: .init(blockEncryptedDNS: true, blockAddresses: true))

    @Test func prerouteDropsComeFirstThenForwardResets() {
        let rules = Self.plan.bypassRules
        // Per family: UDP 443 skips the capture; 443 and 853 rejected, UDP and TCP. Then 853 for any address.
        #expect(rules.count == 2 * (1 + 4) + 2)
        let prerouting = rules.prefix { $0.chain == .prerouting }
        #expect(prerouting.map(\.verdict) == [.skipCapture, .skipCapture, .drop])
        #expect(prerouting.filter { $0.verdict == .skipCapture }.allSatisfy { $0.port == 443 && $0.transport == .udp && $0.counter == nil })
        let forward = rules.dropFirst(3)
        #expect(forward.allSatisfy { $0.chain == .forward })
        #expect(forward.filter { $0.transport == .udp }.allSatisfy { $0.verdict == .unreachable })
        #expect(forward.filter { $0.transport == .tcp }.allSatisfy { $0.verdict == .reset })
        #expect(Set(rules.filter { $0.destination != .any }.map(\.port)) == [443, 853])
        #expect(Self.plan.bypassCounters == ["encrypted_dns", "blocked_addresses"])
        var none = Self.plan
        none.bypass = nil
        #expect(none.bypassRules.isEmpty && none.bypassCounters.isEmpty)
    }

    @Test func renderedInOrderBeforeTheCapture() throws {
        let rendered = NftablesMessages.render(Self.plan)
        #expect(rendered.count == Self.plan.bypassRules.count + Self.plan.rules.count)
        // udp dport 853 drop, counted into encrypted_dns (after the two capture skips)
        let first = rendered[2]
        for part in ["[ meta load iifname => reg 1 ]", "[ cmp eq reg 1 0x00000011 ]", "[ cmp eq reg 1 0x00005503 ]",
                     "[ objref type 1 name encrypted_dns ]", "[ immediate reg 0 drop ]"] {
            #expect(first.contains(part), "\(part) in \(first)")
        }
        // tcp dport 443 to blocked_v4: a set lookup on the IPv4 destination, then a reset
        let v4 = try #require(rendered.first { $0.contains("blocked_v4") && $0.contains("reject type 1") })
        for part in ["[ payload load 4b @ network header + 16 => reg 1 ]", "[ lookup reg 1 set blocked_v4 ]",
                     "[ objref type 1 name blocked_addresses ]", "[ reject type 1 code 0 ]"] {
            #expect(v4.contains(part), "\(part) in \(v4)")
        }
        #expect(rendered[0].contains("[ lookup reg 1 set blocked_v4 ]") && rendered[0].contains("[ immediate reg 0 accept ]"))
        let udp = try #require(rendered.first { $0.contains("blocked_v6") && $0.contains("reject") && $0.contains("0x00000011") })
        #expect(udp.contains("[ reject type 2 code 1 ]"), "\(udp)")
        #expect(rendered.last?.contains("[ tproxy") == true)
    }

    @Test func addressFilesKeepGoodLinesAndNameBadOnes() throws {
        let list = try AddressList.parse("# DoH\n10.53.4.53\n  2001:db8::/32  ; doc range\nnot-an-address\n10.53.0.0/33\n\n! end\n", path: "doh.txt")
        #expect(list.prefixes.map(\.description) == ["10.53.4.53/32", "2001:db8::/32"])
        #expect(list.rejected.map(\.line) == [4, 5])
        #expect(list.rejected.map(\.text) == ["not-an-address", "10.53.0.0/33"])
        let many = String(repeating: "10.0.0.1\n", count: AddressList.maxEntries + 1)
        #expect(throws: RelayError.self) { try AddressList.parse(many, path: "big.txt") }
        #expect(throws: RelayError.self) { try AddressList.load("/nonexistent/doh.txt") }
    }

    @Test func rangesAreMergedAndEndAtTheEdgeOfTheSpace() {
        let prefixes = ["10.0.0.0/24", "10.0.1.0/24", "10.0.0.128/25", "192.0.2.7", "255.255.255.0/24", "fd53::/64", "fd53:0:0:1::/64", "::/0"]
            .map { IPPrefix($0)! }
        let v4 = AddressList.rangesV4(prefixes)
        #expect(v4.count == 3)
        #expect(v4[0] == 0x0A00_0000...0x0A00_01FF)
        #expect(v4[1] == 0xC000_0207...0xC000_0207)
        #expect(v4[2].upperBound == .max)
        let v6 = AddressList.rangesV6(prefixes)
        #expect(v6 == [0...UInt128.max], "::/0 swallows the rest")
        let two = AddressList.rangesV6([IPPrefix("fd53::/64")!, IPPrefix("fd53:0:0:1::/64")!])
        #expect(two.count == 1 && two[0].upperBound - two[0].lowerBound == (UInt128(1) << 65) - 1)
    }
}
