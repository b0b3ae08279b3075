import Glibc
import RelayCore
import Testing
@testable import Relay

/// The token buckets behind `limits.client_qps`, with a clock the test moves: burst, refill,
/// prefixes, exemptions, eviction under a flood of sources, and two threads on one client.
@Suite struct ClientRateLimiterTests {
    static func limiter(qps: Int = 10, burst: Int = 5, v4: Int = 32, v6: Int = 64, exempt: [String] = []) -> ClientRateLimiter {
        ClientRateLimiter(.init(qps: qps, burst: burst, prefixV4: v4, prefixV6: v6, exempt: exempt.map { IPPrefix($0)! }), seed: 0x1234_5678)
    }

    static func allowed(_ limiter: ClientRateLimiter, _ client: String, count: Int, at ms: UInt64) -> Int {
        (0..<count).filter { _ in limiter.admit(IPAddress(client)!, nowMilliseconds: ms) == .allow }.count
    }

    @Test func aBurstThenTheRate() {
        let limiter = Self.limiter(qps: 10, burst: 5)
        #expect(Self.allowed(limiter, "10.53.1.2", count: 20, at: 1_000) == 5)
        // 10 per second: one token every 100 ms.
        #expect(Self.allowed(limiter, "10.53.1.2", count: 20, at: 1_100) == 1)
        #expect(Self.allowed(limiter, "10.53.1.2", count: 20, at: 1_350) == 2)
        // A long quiet spell refills to the burst, not beyond.
        #expect(Self.allowed(limiter, "10.53.1.2", count: 20, at: 100_000) == 5)
        // Another client has its own bucket.
        #expect(Self.allowed(limiter, "10.53.1.3", count: 20, at: 100_000) == 5)
    }

    /// Workers stamp one client's bucket with their own batch's clock: a worker whose batch began
    /// a few ms before another's must see no time passed, not a refill (the clock difference
    /// read unsigned had been ~49 days: a full bucket for every such race).
    @Test func aClockAFewMillisecondsBehindRefillsNothing() {
        let limiter = Self.limiter(qps: 10, burst: 5)
        #expect(Self.allowed(limiter, "10.53.1.2", count: 20, at: 10_000) == 5)
        #expect(Self.allowed(limiter, "10.53.1.2", count: 20, at: 9_997) == 0)
        #expect(Self.allowed(limiter, "10.53.1.2", count: 20, at: 9_000) == 0)
        // The later stamp stays: 100 ms after it, one token.
        #expect(Self.allowed(limiter, "10.53.1.2", count: 20, at: 10_100) == 1)
        // A stamp over a minute ahead of the clock is the 32-bit milliseconds having wrapped
        // (49.7 days on, less 100 s here): a full bucket.
        #expect(Self.allowed(limiter, "10.53.1.2", count: 20, at: (1 << 32) + 10_100 - 100_000) == 5)
    }

    @Test func overTenSecondsTheRateHolds() {
        let limiter = Self.limiter(qps: 100, burst: 100)
        var admitted = 0
        // 5× the rate, one query every 2 ms for 10 s.
        for step in 0..<5_000 { admitted += Self.allowed(limiter, "10.53.1.9", count: 1, at: 50_000 + UInt64(step) * 2) }
        #expect(admitted >= 1_050 && admitted <= 1_110, "\(admitted) admitted of 5000 at 100/s + 100 burst over 10 s")
    }

    @Test func prefixesGroupClients() {
        let limiter = Self.limiter(qps: 1, burst: 3, v4: 24, v6: 64)
        #expect(Self.allowed(limiter, "10.53.1.2", count: 2, at: 1_000) == 2)
        #expect(Self.allowed(limiter, "10.53.1.200", count: 2, at: 1_000) == 1)
        #expect(Self.allowed(limiter, "10.53.2.2", count: 2, at: 1_000) == 2)
        #expect(Self.allowed(limiter, "fd53:1::1", count: 2, at: 1_000) == 2)
        #expect(Self.allowed(limiter, "fd53:1::ffff:2", count: 2, at: 1_000) == 1)
        #expect(Self.allowed(limiter, "fd53:1:0:1::1", count: 2, at: 1_000) == 2)
        #expect(limiter.prefix(of: IPAddress("fd53:1::ffff:2")!).description == "fd53:1::/64")
    }

    @Test func exemptClientsAreNeverLimited() {
        let limiter = Self.limiter(qps: 1, burst: 1, exempt: ["10.53.1.0/24", "fd53:9::/32"])
        #expect(Self.allowed(limiter, "10.53.1.7", count: 1_000, at: 1_000) == 1_000)
        #expect(Self.allowed(limiter, "fd53:9::7", count: 1_000, at: 1_000) == 1_000)
        #expect(Self.allowed(limiter, "10.53.2.7", count: 1_000, at: 1_000) == 1)
    }

    @Test func aFloodOfSourcesEvictsTheOldestAndCostsNoMemory() {
        let limiter = Self.limiter(qps: 1, burst: 2)
        #expect(Self.allowed(limiter, "10.53.1.2", count: 5, at: 1_000) == 2)
        // 200,000 spoofed sources, three times the table, at later times.
        for i in 0..<200_000 {
            let address = IPAddress.v4(IPv4Address(rawValue: UInt32(0x0B00_0000 + i).bigEndian))
            _ = limiter.admit(address, nowMilliseconds: 2_000 + UInt64(i / 1000))
        }
        // (The table is a fixed inline array, so memory cannot grow; the e2e flood measures RSS.)
        // The first client was evicted (the oldest): it starts again with a full bucket.
        #expect(Self.allowed(limiter, "10.53.1.2", count: 5, at: 2_300) == 2)
    }

    @Test func reportsAtMostOncePerTenSeconds() {
        let limiter = Self.limiter(qps: 1, burst: 1)
        let client = IPAddress("10.53.1.2")!
        _ = Self.allowed(limiter, "10.53.1.2", count: 3, at: 5_000)
        #expect(limiter.shouldReport(client, nowMilliseconds: 5_000))
        #expect(!limiter.shouldReport(client, nowMilliseconds: 9_000))
        #expect(!limiter.shouldReport(client, nowMilliseconds: 14_000))
        #expect(limiter.shouldReport(client, nowMilliseconds: 15_000))
    }

    /// Two workers taking from one client's bucket at once never give out more than it holds.
    @Test func twoThreadsShareOneBucket() async {
        let limiter = Self.limiter(qps: 1, burst: 1_000)
        let counts = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<2 {
                group.addTask { Self.allowed(limiter, "10.53.1.2", count: 20_000, at: 7_000) }
            }
            return await group.reduce(0, +)
        }
        #expect(counts >= 1_000 && counts <= 1_010, "\(counts) admitted from a bucket of 1000")
    }
}
