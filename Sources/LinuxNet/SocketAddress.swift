#if canImport(Glibc)
import Glibc
#endif
import RelayCore

extension Endpoint {
    /// Reads a `sockaddr_in` or `sockaddr_in6`; nil for other families or a short length.
    /// IPv4-mapped IPv6 addresses stay IPv6: the relay keeps each family on its own sockets.
    @inline(__always)
    public init?(sockaddr pointer: UnsafeRawPointer, length: socklen_t) {
        let family = pointer.load(fromByteOffset: 0, as: sa_family_t.self)
        switch Int32(family) {
        case AF_INET where length >= MemoryLayout<sockaddr_in>.size:
            let sin = pointer.loadUnaligned(as: sockaddr_in.self)
            self.init(address: .v4(IPv4Address(rawValue: sin.sin_addr.s_addr)), port: UInt16(bigEndian: sin.sin_port))
        case AF_INET6 where length >= MemoryLayout<sockaddr_in6>.size:
            let sin6 = pointer.loadUnaligned(as: sockaddr_in6.self)
            let address = withUnsafeBytes(of: sin6.sin6_addr) { raw in
                IPv6Address(high: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                            low: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            }
            self.init(address: .v6(address), port: UInt16(bigEndian: sin6.sin6_port))
        default:
            return nil
        }
    }

    /// The socket family of this endpoint (AF_INET or AF_INET6).
    public var family: Int32 { address.isIPv6 ? AF_INET6 : AF_INET }

    /// Writes this endpoint as a sockaddr into `pointer` (which must hold a `sockaddr_storage`)
    /// and returns its length.
    @inline(__always)
    @discardableResult
    public func write(to pointer: UnsafeMutableRawPointer) -> socklen_t {
        switch address {
        case .v4(let a):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr.s_addr = a.rawValue
            pointer.storeBytes(of: sin, as: sockaddr_in.self)
            return socklen_t(MemoryLayout<sockaddr_in>.size)
        case .v6(let a):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { raw in
                raw.storeBytes(of: a.high, toByteOffset: 0, as: UInt64.self)
                raw.storeBytes(of: a.low, toByteOffset: 8, as: UInt64.self)
            }
            pointer.storeBytes(of: sin6, as: sockaddr_in6.self)
            return socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
    }

    /// Calls `body` with this endpoint as a sockaddr pointer and length.
    public func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        var storage = sockaddr_storage()
        return try withUnsafeMutableBytes(of: &storage) { raw in
            let length = write(to: raw.baseAddress!)
            return try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }
}
