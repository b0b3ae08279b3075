import Glibc
import LinuxNet
import RelayCore

/// Opens the UDP sockets queries go upstream on, for the shared pools and for clients' own
/// addresses alike: non-blocking, the bypass mark (nothing the relay sends is captured again), a
/// large receive buffer, a kernel-chosen random port (RFC 5452 §9.2), registered with the
/// worker's epoll.
enum UpstreamUDPSocket {
    /// `source` nil: bound to the wildcard address of `family` (the host's own address goes out).
    /// `source` set: IP_TRANSPARENT, bound to that (non-local) address, and connected to `server`,
    /// so that the kernel gives it only answers from that server (a client's own traffic to other
    /// hosts on the same port is never taken for it).
    static func open(family: Int32, source: IPAddress? = nil, server: Endpoint? = nil, bypassMark: UInt32, epoll: Epoll) throws(Errno) -> Socket {
        let socket = try Socket(family: family, type: Int32(SOCK_DGRAM.rawValue))
        do {
            try socket.set(.mark(bypassMark))
            if (try? socket.set(.receiveBufferForce(4 << 20))) == nil { try? socket.set(.receiveBuffer(4 << 20)) }
            if let source {
                try socket.set(.transparent)
                try socket.bind(to: Endpoint(address: source, port: 0))
                if let server { try socket.connect(to: server) }
            } else {
                // Port 0: the kernel picks a random free ephemeral port.
                try socket.bind(to: Endpoint(address: family == AF_INET6 ? .anyV6 : .anyV4, port: 0))
            }
            try epoll.add(socket.fd, token: token(socket.fd))
        } catch {
            socket.close()
            throw error
        }
        return socket
    }

    /// The epoll token of an upstream UDP socket: its descriptor, under `EpollToken.upstreamSocket`.
    @inline(__always)
    static func token(_ fd: Int32) -> UInt64 { EpollToken.upstreamSocket | UInt64(UInt32(bitPattern: fd)) }
}
