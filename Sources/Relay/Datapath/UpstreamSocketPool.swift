import LinuxNet
import RelayCore

/// A worker's upstream sockets for one address family: each bound to its own kernel-chosen
/// random port and marked with the bypass mark, so nothing the relay sends is captured again.
///
/// Source ports carry most of a query's unpredictability (RFC 5452 §9.2): an attacker who learns
/// one (by making the relay ask a server it watches) may spoof answers to it for as long as it
/// is used. So a socket carries one batch: a batch of queries leaves from one socket (one
/// sendmmsg), and after the batch that socket is replaced by a fresh one on a new random port.
/// A new socket costs about 5–10 µs (socket, options, bind, epoll, and the close later), so
/// replacements are capped at `maxReplacementsPerSecond` per pool: under light load that is a
/// new port per query, under full load a port carries a few dozen queries, and the cost stays
/// under about 1 % of a core whatever the load (bench/run.sh miss: without the cap, one socket
/// per batch cost +0.4 µs per query at 54k qps). A replaced socket keeps receiving until no query waits on it any more (checked
/// every `sweepInterval`) or its last query could have timed out, then it is closed. At most
/// `maxRetiring` replaced sockets stay open; past that, sockets are used again (counted in
/// `reused`) rather than letting a silent upstream drive the descriptor count up.
final class UpstreamSocketPool {
    let family: Int32
    private var sockets: [Socket]
    private var retiring: [(socket: Socket, closeAt: UInt64)] = []
    private let bypassMark: UInt32
    private let epoll: Epoll
    private let token: (Int32) -> UInt64
    /// The socket of the current batch, and how many queries it carried in it.
    private var current = 0
    private var currentUses = 0
    /// Replaced sockets at most, per pool.
    let maxRetiring: Int
    static let sweepInterval: UInt64 = 50_000_000
    private var nextSweep: UInt64 = 0
    /// Replacements per second at most, and the current second's count.
    static let maxReplacementsPerSecond = 1000
    private var windowStart: UInt64 = 0
    private var replacementsInWindow = 0
    /// Sockets opened since start (distinct source ports used, as far as the kernel's random
    /// choice goes), and batches that had to reuse a socket because `maxRetiring` was reached.
    private(set) var opened = 0
    private(set) var reused = 0

    init(family: Int32, count: Int, bypassMark: UInt32, epoll: Epoll, now: UInt64, maxRetiring: Int = 256,
         token: @escaping (Int32) -> UInt64) throws {
        self.family = family
        self.bypassMark = bypassMark
        self.epoll = epoll
        self.token = token
        self.maxRetiring = maxRetiring
        sockets = []
        for _ in 0..<count { sockets.append(try makeSocket()) }
    }

    private func makeSocket() throws -> Socket {
        let socket = try Socket(family: family, type: Int32(SOCK_DGRAM.rawValue))
        do {
            try socket.set(.mark(bypassMark))
            if (try? socket.set(.receiveBufferForce(4 << 20))) == nil { try? socket.set(.receiveBuffer(4 << 20)) }
            // Port 0: the kernel picks a random free ephemeral port.
            try socket.bind(to: Endpoint(address: family == AF_INET6 ? .anyV6 : .anyV4, port: 0))
            try epoll.add(socket.fd, token: token(socket.fd))
        } catch {
            socket.close()
            throw error
        }
        opened += 1
        return socket
    }

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

    /// After a batch went out: the socket it used is replaced by one on a new port (unless this
    /// second's replacements are spent, too many replaced sockets are still open, or no socket
    /// can be made: then it serves again).
    @inline(__always)
    func batchSent(now: UInt64, timeoutNanoseconds: UInt64) {
        guard currentUses > 0 else { return }
        currentUses = 0
        if now &- windowStart >= 1_000_000_000 {
            windowStart = now
            replacementsInWindow = 0
        }
        guard replacementsInWindow < Self.maxReplacementsPerSecond, retiring.count < maxRetiring, let fresh = try? makeSocket() else {
            reused += 1
            return
        }
        replacementsInWindow += 1
        retiring.append((sockets[current], now + timeoutNanoseconds + 100_000_000))
        sockets[current] = fresh
    }

    /// Whether any replaced socket waits to be closed.
    var hasRetiring: Bool { !retiring.isEmpty }

    /// Closes replaced sockets that no query waits on (`busy` holds the descriptors queries in
    /// flight went out on) or whose queries have all timed out. Every `sweepInterval` at most;
    /// `busy` is only asked for when there is something to close.
    func maintain(now: UInt64, busy: () -> Set<Int32>) {
        guard !retiring.isEmpty, now >= nextSweep else { return }
        nextSweep = now + Self.sweepInterval
        let waited = busy()
        retiring.removeAll { entry in
            guard entry.closeAt <= now || !waited.contains(entry.socket.fd) else { return false }
            epoll.remove(entry.socket.fd)
            entry.socket.close()
            return true
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
