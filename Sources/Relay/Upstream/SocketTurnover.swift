import LinuxNet

/// Upstream UDP sockets taken out of service that still wait for answers, and how many new
/// sockets this second may bring: shared by the replacement policy of `UpstreamSocketPool` and
/// `SourceSockets`.
///
/// A new socket costs about 5–10 µs (socket, options, bind, epoll, and the close later), so
/// replacements are capped at `maxReplacementsPerSecond`: under light load that is a new port
/// per query, under full load a port carries a few dozen queries, and the cost stays under about
/// 1 % of a core whatever the load (bench/run.sh miss: without the cap, one socket per batch cost
/// +0.4 µs per query at 54k qps). A retired socket keeps receiving until no query waits on it
/// any more (checked every `sweepInterval`) or its last query could have timed out, then it is
/// closed. At most `maxRetiring` stay open: past that, sockets are used again rather than letting
/// a silent upstream drive the descriptor count up.
final class SocketTurnover {
    static let maxReplacementsPerSecond = 1000
    static let sweepInterval: UInt64 = 50_000_000

    let maxRetiring: Int
    private var retiring: [(socket: Socket, closeAt: UInt64)] = []
    private let epoll: Epoll
    private var windowStart: UInt64 = 0
    private var replacementsInWindow = 0
    private var nextSweep: UInt64 = 0
    /// Replacements that did not happen (this second's budget spent, or too many retiring).
    private(set) var reused = 0

    init(maxRetiring: Int, epoll: Epoll) {
        self.maxRetiring = maxRetiring
        self.epoll = epoll
        retiring.reserveCapacity(maxRetiring)
    }

    /// Whether a socket may be replaced now; counts the replacement when it may, the reuse when not.
    @inline(__always)
    func mayReplace(now: UInt64) -> Bool {
        if now &- windowStart >= 1_000_000_000 {
            windowStart = now
            replacementsInWindow = 0
        }
        guard replacementsInWindow < Self.maxReplacementsPerSecond, retiring.count < maxRetiring else {
            reused += 1
            return false
        }
        replacementsInWindow += 1
        return true
    }

    /// Whether one more socket may wait for its answers.
    var hasRoom: Bool { retiring.count < maxRetiring }

    /// Takes `socket` out of service; it is closed once no query waits on it, or at `closeAt`.
    func retire(_ socket: Socket, closeAt: UInt64) {
        retiring.append((socket, closeAt))
    }

    var isEmpty: Bool { retiring.isEmpty }
    var count: Int { retiring.count }

    /// Closes retired sockets that no query waits on (`busy` holds the descriptors queries in
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
        for entry in retiring {
            epoll.remove(entry.socket.fd)
            entry.socket.close()
        }
        retiring = []
    }
}
