import Glibc
import LinuxNet
import Testing
@testable import Relay

/// Issue 13, finding 12: a fresh source port per batch, bounded replaced sockets.
@Suite struct UpstreamSocketPoolTests {
    static func pool(count: Int = 4, maxRetiring: Int = 256) throws -> (UpstreamSocketPool, Epoll) {
        let epoll = try Epoll()
        let pool = try UpstreamSocketPool(family: AF_INET, count: count, bypassMark: 0, epoll: epoll, maxRetiring: maxRetiring)
        return (pool, epoll)
    }

    static func port(_ fd: Int32) -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return UInt16(bigEndian: address.sin_port)
    }

    @Test func everyBatchThatSentLeavesFromANewPort() throws {
        let (pool, _) = try Self.pool()
        let random = RandomSource()
        var ports = Set<UInt16>()
        for batch in 0..<200 {
            let fd = pool.pick(random)
            ports.insert(Self.port(fd))
            pool.used()
            pool.batchSent(now: UInt64(batch) * 1_000_000, timeoutNanoseconds: 2_000_000_000)  // a batch a millisecond
        }
        #expect(pool.opened == 4 + 200)
        #expect(ports.count >= 195, "\(ports.count) distinct ports over 200 batches")
        pool.closeAll()
    }

    /// At most `maxReplacementsPerSecond` new sockets a second, spread out: under full load ports
    /// carry more queries rather than the relay spending a core on sockets, and a burst of misses
    /// after a quiet spell opens `replacementBurst` sockets at once, not a second's worth.
    @Test func replacementsFollowATokenBucket() throws {
        let (pool, _) = try Self.pool(count: 2, maxRetiring: 100_000)
        let random = RandomSource()
        func batch(at now: UInt64) {
            _ = pool.pick(random)
            pool.used()
            pool.batchSent(now: now, timeoutNanoseconds: 1)
        }
        let burst = SocketTurnover.replacementBurst
        for _ in 0..<(burst + 50) { batch(at: 5_000_000_000) }
        #expect(pool.opened == 2 + burst)
        #expect(pool.reused == 50)
        // The next second, a batch every 100 µs: one new socket a millisecond.
        for step in 1...10_000 { batch(at: 5_000_000_000 + UInt64(step) * 100_000) }
        #expect(pool.opened == 2 + burst + SocketTurnover.maxReplacementsPerSecond)
        // After a quiet spell the bucket is full again, and no fuller.
        for _ in 0..<(burst + 10) { batch(at: 9_000_000_000) }
        #expect(pool.opened == 2 + 2 * burst + SocketTurnover.maxReplacementsPerSecond)
        pool.closeAll()
    }

    @Test func aBatchThatSentNothingKeepsItsSocket() throws {
        let (pool, _) = try Self.pool()
        let random = RandomSource()
        for _ in 0..<50 {
            _ = pool.pick(random)
            pool.batchSent(now: 0, timeoutNanoseconds: 1)
        }
        #expect(pool.opened == 4)
        pool.closeAll()
    }

    @Test func replacedSocketsCloseOnceNothingWaitsAndAreCapped() throws {
        let (pool, _) = try Self.pool(count: 2, maxRetiring: 8)
        let random = RandomSource()
        var waiting = Set<Int32>()
        for _ in 0..<20 {
            let fd = pool.pick(random)
            waiting.insert(fd)
            pool.used()
            pool.batchSent(now: 0, timeoutNanoseconds: 10_000_000_000)
        }
        // Eight replaced sockets at most; past that a socket serves again.
        #expect(pool.opened == 2 + 8)
        #expect(pool.reused == 12)
        // While their queries wait they stay open; once nothing waits they close.
        pool.turnover.maintain(now: 1, busy: { waiting })
        #expect(!pool.turnover.isEmpty)
        pool.turnover.maintain(now: 1 + SocketTurnover.sweepInterval, busy: { [] })
        #expect(pool.turnover.isEmpty)
        // And the next batches get new ports again.
        _ = pool.pick(random)
        pool.used()
        pool.batchSent(now: 2, timeoutNanoseconds: 1)
        #expect(pool.opened == 11)
        pool.closeAll()
    }

    @Test func replacedSocketsCloseAfterTheTimeoutWhateverWaits() throws {
        let (pool, _) = try Self.pool(count: 1)
        let random = RandomSource()
        let fd = pool.pick(random)
        pool.used()
        pool.batchSent(now: 0, timeoutNanoseconds: 1_000)
        pool.turnover.maintain(now: 1_000 + 100_000_000 + 1, busy: { [fd] })
        #expect(pool.turnover.isEmpty)
        pool.closeAll()
    }
}
