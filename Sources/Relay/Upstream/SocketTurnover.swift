import LinuxNet

/// Upstream UDP sockets taken out of service that still wait for answers, and how many new
/// sockets may be opened now: shared by the replacement policy of `UpstreamSocketPool` and
/// `SourceSockets`.
///
/// A new socket costs about 5–10 µs (socket, options, bind, epoll, and the close later), so
/// replacements are capped at `maxReplacementsPerSecond`: under light load that is a new port
/// per query, under full load a port carries a few dozen queries, and the cost stays under about
/// 1 % of a core whatever the load (bench/run.sh miss: without the cap, one socket per batch cost
/// +0.4 µs per query at 54k qps). The budget is a token bucket, one replacement a millisecond and
/// at most `replacementBurst` at once. A second's budget spent in its first milliseconds (up to
/// the 256 retired sockets at once, at a cold start under a burst of misses) had slowed the
/// worker's first 50 ms: at 20k qps of cold names the slowest answer in the first 100 ms took
/// 5–9 ms in rtr, 2.3–2.8 ms with the bucket (bench/run.sh hot, 3 pairs, docs/DESIGN.md).
///
/// A retired socket keeps receiving until no query waits on it any more (checked every
/// `sweepInterval`) or its last query could have timed out, then it is closed. At most
/// `maxRetiring` stay open: past that, sockets are used again rather than letting a silent
/// upstream drive the descriptor count up.
final class SocketTurnover {
    static let maxReplacementsPerSecond = 1000
    /// Replacements that may happen back to back once the bucket has filled.
    static let replacementBurst = 32
    static let sweepInterval: UInt64 = 50_000_000
    private static let replacementInterval: UInt64 = 1_000_000_000 / UInt64(maxReplacementsPerSecond)

    let maxRetiring: Int
    private var retiring: [(socket: Socket, closeAt: UInt64)] = []
    private let epoll: Epoll
    /// Replacements that may happen now, and when the bucket was last topped up.
    private var credit = SocketTurnover.replacementBurst
    private var creditedAt: UInt64 = 0
    private var nextSweep: UInt64 = 0
    /// Replacements that did not happen (the bucket empty, or too many retiring).
    private(set) var reused = 0

    init(maxRetiring: Int, epoll: Epoll) {
        self.maxRetiring = maxRetiring
        self.epoll = epoll
        retiring.reserveCapacity(maxRetiring)
    }

    /// Whether a socket may be replaced now; counts the replacement when it may, the reuse when not.
    @inline(__always)
    func mayReplace(now: UInt64) -> Bool {
        if credit == Self.replacementBurst {
            creditedAt = now  // full: the time to the next credit counts from the first one spent
        } else if now &- creditedAt >= Self.replacementInterval {
            let earned = (now &- creditedAt) / Self.replacementInterval
            credit = Int(min(UInt64(Self.replacementBurst), UInt64(credit) + earned))
            creditedAt &+= earned &* Self.replacementInterval
        }
        guard credit > 0, retiring.count < maxRetiring else {
            reused += 1
            return false
        }
        credit -= 1
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
