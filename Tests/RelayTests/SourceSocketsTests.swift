import Glibc
import LinuxNet
import RelayCore
import Testing
@testable import Relay

/// Issue 17: sockets bound to clients' addresses, one per client and server, bounded, on fresh
/// ports. Loopback addresses stand in for clients (127/8 is local, so no privilege is needed
/// to bind them; nothing is sent).
@Suite struct SourceSocketsTests {
    static let server = Endpoint(address: .v4(IPv4Address(127, 0, 0, 1)), port: 53)
    static func client(_ n: UInt8) -> IPAddress { .v4(IPv4Address(127, 0, 1, n)) }

    static func local(_ fd: Int32) -> (IPAddress, UInt16) {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return (.v4(IPv4Address(rawValue: address.sin_addr.s_addr)), UInt16(bigEndian: address.sin_port))
    }

    @Test func aClientAndServerKeepTheirSocketWithinABatch() throws {
        let sockets = SourceSockets(capacity: 8, maxRetiring: 8, bypassMark: 0, epoll: try Epoll())
        let first = try #require(sockets.descriptor(client: Self.client(1), server: Self.server, closeAt: 0))
        #expect(sockets.descriptor(client: Self.client(1), server: Self.server, closeAt: 0) == first)
        #expect(Self.local(first).0 == Self.client(1), "bound to the client's address")
        let other = try #require(sockets.descriptor(client: Self.client(2), server: Self.server, closeAt: 0))
        #expect(other != first)
        #expect(sockets.open == 2 && sockets.opened == 2)
        sockets.closeAll()
    }

    @Test func afterABatchEachUsedSocketMovesToANewPort() throws {
        let sockets = SourceSockets(capacity: 8, maxRetiring: 64, bypassMark: 0, epoll: try Epoll())
        var ports = Set<UInt16>()
        for batch in 0..<20 {
            let fd = try #require(sockets.descriptor(client: Self.client(1), server: Self.server, closeAt: 0))
            ports.insert(Self.local(fd).1)
            sockets.batchSent(now: UInt64(batch), timeoutNanoseconds: 1_000_000_000)
        }
        #expect(ports.count >= 19, "\(ports.count) ports over 20 batches")
        #expect(sockets.open == 1, "one socket per client and server in the table")
        #expect(sockets.turnover.count == 20, "the replaced ones wait for their answers")
        sockets.turnover.maintain(now: 100, busy: { [] })
        #expect(sockets.turnover.isEmpty)
        sockets.closeAll()
    }

    @Test func theTableIsBoundedAndTheLeastRecentlyUsedGoes() throws {
        let sockets = SourceSockets(capacity: 4, maxRetiring: 2, bypassMark: 0, epoll: try Epoll())
        for n: UInt8 in 1...4 { _ = try #require(sockets.descriptor(client: Self.client(n), server: Self.server, closeAt: 10)) }
        _ = sockets.descriptor(client: Self.client(1), server: Self.server, closeAt: 10)  // 1 is now the most recent
        sockets.batchSent(now: 0, timeoutNanoseconds: 0)
        sockets.turnover.maintain(now: 1_000_000_000, busy: { [] })
        #expect(sockets.turnover.isEmpty)
        // Two new clients take the places of 2 and 3; their sockets retire.
        _ = try #require(sockets.descriptor(client: Self.client(5), server: Self.server, closeAt: 10))
        _ = try #require(sockets.descriptor(client: Self.client(6), server: Self.server, closeAt: 10))
        #expect(sockets.open == 4 && sockets.turnover.count == 2)
        // No room for a third retired socket: no socket, the caller sends from this host's address.
        #expect(sockets.descriptor(client: Self.client(7), server: Self.server, closeAt: 10) == nil)
        // Four at first, two replaced after the batch (then the retiring list was full), two new.
        #expect(sockets.opened == 4 + 2 + 2)
        sockets.closeAll()
    }

    @Test func aServerOfTheOtherFamilyGetsNone() throws {
        let sockets = SourceSockets(capacity: 4, maxRetiring: 4, bypassMark: 0, epoll: try Epoll())
        let v6 = Endpoint(address: IPAddress("::1")!, port: 53)
        #expect(sockets.descriptor(client: Self.client(1), server: v6, closeAt: 0) == nil)
        #expect(sockets.opened == 0)
    }
}
