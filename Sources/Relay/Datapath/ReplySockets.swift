import Glibc
import LinuxNet
import RelayCore

/// Transparent sockets bound to the addresses clients asked (the original destinations), kept and
/// reused: an answer leaves from exactly the address and port the client sent its query to.
///
/// A socket bound to a non-local address with IP_TRANSPARENT sends with that source. It is bound
/// to a specific address and left unconnected, so the kernel's TPROXY lookup never picks it for
/// incoming queries (only connected or wildcard sockets match there).
final class ReplySockets {
    private var sockets: [Endpoint: Socket] = [:]
    private let limit: Int
    /// Last failure, for a rate-limited log line.
    private(set) var lastError: String?

    /// Sockets evicted during this loop turn, closed by `reap()`.
    private var evicted: [Socket] = []

    /// SO_MARK on every reply socket: every socket the relay opens carries the bypass mark, so no
    /// packet of its own is ever captured again (with `intercept.local`, by the output chain).
    private let bypassMark: UInt32

    init(limit: Int = 1024, bypassMark: UInt32 = 0) {
        self.limit = limit
        self.bypassMark = bypassMark
    }

    /// Closes sockets evicted since the last call; call when every sender has been flushed.
    @inline(__always)
    func reap() {
        if !evicted.isEmpty { evicted.removeAll() }
    }

    /// The descriptor that sends from `origin`, opened on first use; nil when it cannot be bound.
    @inline(__always)
    func descriptor(for origin: Endpoint) -> Int32? {
        if let socket = sockets[origin] { return socket.fd }
        do {
            let socket = try Socket.udp(for: origin)
            try socket.set([.transparent, .reuseAddress, .reusePort])
            if bypassMark != 0 { try socket.set(.mark(bypassMark)) }
            try socket.bind(to: origin)
            // Kept small: nothing should ever arrive here.
            try? socket.set(.receiveBuffer(4096))
            if sockets.count >= limit, let victim = sockets.keys.first, let old = sockets.removeValue(forKey: victim) {
                // Not closed yet: a sender may still hold its descriptor for this batch, and a
                // descriptor number closed now could be reused by a new socket before the flush.
                evicted.append(old)
            }
            sockets[origin] = socket
            return socket.fd
        } catch {
            lastError = "cannot open a reply socket bound to \(origin): \(error)"
            return nil
        }
    }

    var count: Int { sockets.count }

    func closeAll() {
        sockets.removeAll()
        evicted.removeAll()
    }
}
