import Testing
@testable import Relay

/// Issue 13, finding 3: caps that fit the open-file limit.
@Suite struct DescriptorBudgetTests {
    static let defaults = DescriptorBudget.Wants(workers: 2, upstreamSockets: 16, tcpConnections: 1024, quicFlows: 10_000)

    static func total(_ b: DescriptorBudget, _ w: DescriptorBudget.Wants) -> Int {
        DescriptorBudget.fixedNeeds(w) + b.tcpConnections + b.quicFlows
            + w.workers * (b.replySocketsPerWorker + b.upstreamConnectionsPerWorker + 2 * b.retiringPerPool)
    }

    @Test func aLargeLimitKeepsTheConfiguredCaps() throws {
        let budget = try #require(DescriptorBudget.plan(limit: 1_048_576, wants: Self.defaults))
        #expect(!budget.lowered)
        #expect(budget.tcpConnections == 1024 && budget.quicFlows == 10_000)
        #expect(budget.replySocketsPerWorker == 1024 && budget.retiringPerPool == 256)
    }

    @Test(arguments: [1024, 2048, 4096, 8192, 16_384])
    func aSmallLimitIsSharedOutAndFits(limit: Int) throws {
        let budget = try #require(DescriptorBudget.plan(limit: limit, wants: Self.defaults))
        #expect(budget.lowered == (limit < 14_760))  // 152 fixed + 14,608 wanted by the defaults
        #expect(Self.total(budget, Self.defaults) <= limit, "\(budget.summary)")
        #expect(budget.tcpConnections >= 16 && budget.quicFlows >= 16)
        #expect(budget.replySocketsPerWorker >= 16 && budget.upstreamConnectionsPerWorker >= 8 && budget.retiringPerPool >= 8)
    }

    @Test(arguments: [1, 8, 64])
    func manyWorkersStillFit(workers: Int) throws {
        var wants = Self.defaults
        wants.workers = workers
        let limit = max(4096, DescriptorBudget.minimumLimit(wants))
        let budget = try #require(DescriptorBudget.plan(limit: limit, wants: wants))
        #expect(Self.total(budget, wants) <= limit)
    }

    @Test func belowTheMinimumThereIsNoPlan() {
        #expect(DescriptorBudget.plan(limit: 100, wants: Self.defaults) == nil)
        #expect(DescriptorBudget.plan(limit: DescriptorBudget.minimumLimit(Self.defaults), wants: Self.defaults) != nil)
    }

    @Test func quicOffNeedsNoFlows() throws {
        var wants = Self.defaults
        wants.quicFlows = 0
        let budget = try #require(DescriptorBudget.plan(limit: 1024, wants: wants))
        #expect(budget.quicFlows == 0)
        #expect(budget.tcpConnections > 100, "\(budget.summary)")
    }
}
