#if canImport(Glibc)
import Glibc
#endif
import RelayCore

/// The socket options the relay uses, named for what they do; the family decides SOL_IP vs SOL_IPV6
/// (mixing the IPv4 names into IPv6 sockets is a classic TPROXY bug, see docs/LINUX-NOTES.md).
public enum SocketOption: Sendable {
    case reuseAddress
    case reusePort
    /// IP_TRANSPARENT / IPV6_TRANSPARENT: bind to and send from non-local addresses; accept TPROXY.
    case transparent
    /// IP_RECVORIGDSTADDR / IPV6_RECVORIGDSTADDR: each datagram carries its original destination.
    case receiveOriginalDestination
    /// IPV6_V6ONLY: an IPv6 socket takes no IPv4-mapped traffic.
    case ipv6Only
    /// SO_RCVBUF in bytes (the kernel doubles it and caps it at rmem_max).
    case receiveBuffer(Int32)
    /// SO_SNDBUF in bytes.
    case sendBuffer(Int32)
    /// SO_MARK: packets this socket sends carry this fwmark.
    case mark(UInt32)
    /// SO_RCVBUFFORCE: like receiveBuffer but past rmem_max (needs CAP_NET_ADMIN).
    case receiveBufferForce(Int32)

    /// (level, name, value) for setsockopt, for a socket of `family`.
    func parameters(family: Int32) -> (level: Int32, name: Int32, value: Int32) {
        let v6 = family == AF_INET6
        switch self {
        case .reuseAddress: return (SOL_SOCKET, SO_REUSEADDR, 1)
        case .reusePort: return (SOL_SOCKET, SO_REUSEPORT, 1)
        case .transparent: return v6 ? (SOL_IPV6, IPV6_TRANSPARENT, 1) : (SOL_IP, IP_TRANSPARENT, 1)
        case .receiveOriginalDestination:
            return v6 ? (SOL_IPV6, IPV6_RECVORIGDSTADDR, 1) : (SOL_IP, IP_RECVORIGDSTADDR, 1)
        case .ipv6Only: return (Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1)
        case .receiveBuffer(let size): return (SOL_SOCKET, SO_RCVBUF, size)
        case .sendBuffer(let size): return (SOL_SOCKET, SO_SNDBUF, size)
        case .mark(let mark): return (SOL_SOCKET, SO_MARK, Int32(bitPattern: mark))
        case .receiveBufferForce(let size): return (SOL_SOCKET, SO_RCVBUFFORCE, size)
        }
    }
}

extension SocketOption {
    /// Sets the option on a descriptor another library opened (libcurl's, in the list
    /// downloader), its family read from the socket itself.
    public func apply(to fd: Int32) throws(Errno) {
        var family: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = try syscall { getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &length) }
        var (level, name, value) = parameters(family: family)
        _ = try syscall { setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) }
    }
}
