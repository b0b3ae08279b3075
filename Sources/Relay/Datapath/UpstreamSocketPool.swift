import LinuxNet
import RelayCore

/// A worker's upstream sockets for one address family: each bound to its own kernel-chosen
/// random port and marked with the bypass mark, so nothing the relay sends is captured again.
///
/// A batch of queries leaves from one socket picked at random, so that sendmmsg can send the
/// batch in one call; under light load that is one random port per query. Every
/// `rotationInterval` one socket is replaced by a fresh one on a new random port; the old one
/// keeps receiving until its last query could have timed out, then it is closed.
final class UpstreamSocketPool {
    let family: Int32
    private var sockets: [Socket]
    private var retiring: [(socket: Socket, closeAt: UInt64)] = []
    private let bypassMark: UInt32
    private let epoll: Epoll
    private let token: (Int32) -> UInt64
    private var nextRotation: UInt64
    private var rotateIndex = 0
    static let rotationInterval: UInt64 = 1_000_000_000

    init(family: Int32, count: Int, bypassMark: UInt32, epoll: Epoll, now: UInt64, token: @escaping (Int32) -> UInt64) throws {
        self.family = family
        self.bypassMark = bypassMark
        self.epoll = epoll
        self.token = token
        sockets = []
        nextRotation = now + Self.rotationInterval
        for _ in 0..<count { sockets.append(try makeSocket()) }
    }

    private func makeSocket() throws -> Socket {
        let socket = try Socket(family: family, type: Int32(SOCK_DGRAM.rawValue))
        try socket.set(.mark(bypassMark))
        if (try? socket.set(.receiveBufferForce(4 << 20))) == nil { try? socket.set(.receiveBuffer(4 << 20)) }
        // Port 0: the kernel picks a random free ephemeral port.
        try socket.bind(to: Endpoint(address: family == AF_INET6 ? .anyV6 : .anyV4, port: 0))
        try epoll.add(socket.fd, token: token(socket.fd))
        return socket
    }

    /// A socket for the next batch, chosen at random.
    @inline(__always)
    func pick(_ random: RandomSource) -> Int32 {
        sockets[random.next(below: sockets.count)].fd
    }

    /// Replaces one socket when it is time, and closes retired ones whose queries have all timed out.
    func maintain(now: UInt64, timeoutNanoseconds: UInt64) {
        if now >= nextRotation {
            nextRotation = now + Self.rotationInterval
            if let fresh = try? makeSocket() {
                let old = sockets[rotateIndex]
                sockets[rotateIndex] = fresh
                retiring.append((old, now + timeoutNanoseconds + 100_000_000))
                rotateIndex = (rotateIndex + 1) % sockets.count
            }
        }
        while let first = retiring.first, first.closeAt <= now {
            epoll.remove(first.socket.fd)
            first.socket.close()
            retiring.removeFirst()
        }
    }

    func closeAll() {
        for socket in sockets + retiring.map(\.socket) {
            epoll.remove(socket.fd)
            socket.close()
        }
        sockets = []
        retiring = []
    }
}

// Swift's Glibc overlay exposes SOCK_DGRAM as an enum case.
import Glibc
