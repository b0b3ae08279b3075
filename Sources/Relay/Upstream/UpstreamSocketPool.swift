import LinuxNet
import RelayCore

/// A worker's upstream sockets for one address family, sending from the host's own address:
/// each bound to its own kernel-chosen random port and marked with the bypass mark, so nothing
/// the relay sends is captured again.
///
/// Source ports carry most of a query's unpredictability (RFC 5452 §9.2): an attacker who learns
/// one (by making the relay ask a server it watches) may spoof answers to it for as long as it
/// is used. So a socket carries one batch: a batch of queries leaves from one socket (one
/// sendmmsg), and after the batch that socket is replaced by a fresh one on a new random port,
/// within the budget of `SocketTurnover`, which also keeps the replaced ones until their answers
/// are in.
final class UpstreamSocketPool {
    let family: Int32
    private var sockets: [Socket]
    private let bypassMark: UInt32
    private let epoll: Epoll
    let turnover: SocketTurnover
    /// The socket of the current batch, and how many queries it carried in it.
    private var current = 0
    private var currentUses = 0
    /// Sockets opened since start (distinct source ports used, as far as the kernel's random
    /// choice goes).
    private(set) var opened = 0

    init(family: Int32, count: Int, bypassMark: UInt32, epoll: Epoll, maxRetiring: Int = 256) throws {
        self.family = family
        self.bypassMark = bypassMark
        self.epoll = epoll
        turnover = SocketTurnover(maxRetiring: maxRetiring, epoll: epoll)
        sockets = []
        for _ in 0..<count { sockets.append(try makeSocket()) }
    }

    private func makeSocket() throws -> Socket {
        let socket = try UpstreamUDPSocket.open(family: family, bypassMark: bypassMark, epoll: epoll)
        opened += 1
        return socket
    }

    /// Batches that had to reuse a socket (SocketTurnover's budget).
    var reused: Int { turnover.reused }

    /// A socket for the next batch, chosen at random.
    @inline(__always)
    func pick(_ random: RandomSource) -> Int32 {
        current = random.next(below: sockets.count)
        currentUses = 0
        return sockets[current].fd
    }

    /// Counts a query sent from the current batch's socket.
    @inline(__always)
    func used() { currentUses += 1 }

    /// After a batch went out: the socket it used is replaced by one on a new port (unless the
    /// turnover's budget is spent or no socket can be made: then it serves again).
    @inline(__always)
    func batchSent(now: UInt64, timeoutNanoseconds: UInt64) {
        guard currentUses > 0 else { return }
        currentUses = 0
        guard turnover.mayReplace(now: now), let fresh = try? makeSocket() else { return }
        turnover.retire(sockets[current], closeAt: now + timeoutNanoseconds + 100_000_000)
        sockets[current] = fresh
    }

    func closeAll() {
        for socket in sockets {
            epoll.remove(socket.fd)
            socket.close()
        }
        sockets = []
        turnover.closeAll()
    }
}
