import Glibc
import LinuxNet
import RelayCore

/// The sockets TPROXY hands traffic to: one UDP and one TCP listener per family and worker (and
/// UDP for QUIC), all transparent and in one SO_REUSEPORT group, so the kernel spreads clients
/// over the workers.
enum Listeners {
    /// A transparent UDP listener that reports each datagram's original destination.
    static func datagram(_ endpoint: Endpoint) throws -> Socket {
        let socket = try Socket.udp(for: endpoint)
        try socket.set([.reuseAddress, .reusePort, .transparent, .receiveOriginalDestination])
        if endpoint.address.isIPv6 { try socket.set(.ipv6Only) }
        // Bursts of a few hundred queries overflow the ~212 KB default (RcvbufErrors).
        if (try? socket.set(.receiveBufferForce(8 << 20))) == nil { try socket.set(.receiveBuffer(8 << 20)) }
        try socket.bind(to: endpoint)
        return socket
    }

    /// A transparent TCP listener: TPROXY hands it connections to any address, and each accepted
    /// socket's local address is the one the client connected to.
    static func stream(_ endpoint: Endpoint) throws -> Socket {
        let socket = try Socket.tcp(for: endpoint)
        try socket.set([.reuseAddress, .reusePort, .transparent])
        if endpoint.address.isIPv6 { try socket.set(.ipv6Only) }
        try socket.bind(to: endpoint)
        try socket.listen(backlog: 1024)
        return socket
    }

    /// Whether `endpoint`'s address is configured on this host (a plain bind to port 0 succeeds).
    static func isLocalAddress(_ endpoint: Endpoint) -> Bool {
        guard let probe = try? Socket.udp(for: endpoint) else { return false }
        return (try? probe.bind(to: Endpoint(address: endpoint.address, port: 0))) != nil
    }
}
