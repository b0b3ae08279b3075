#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 address, stored exactly as `in_addr.s_addr` holds it (network byte order in memory).
public struct IPv4Address: Hashable, Sendable {
    /// The raw `s_addr` value.
    public var rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Builds an address from its four dotted-quad octets.
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        self.rawValue = (UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)).bigEndian
    }

    /// The four octets, most significant first.
    public var octets: [UInt8] {
        let host = UInt32(bigEndian: rawValue)
        return [UInt8(host >> 24), UInt8(host >> 16 & 0xff), UInt8(host >> 8 & 0xff), UInt8(host & 0xff)]
    }
}

/// An IPv6 address, stored as the two halves of `in6_addr` in memory order.
public struct IPv6Address: Hashable, Sendable {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Builds an address from its 16 bytes in network order.
    public init(bytes: [UInt8]) {
        precondition(bytes.count == 16, "an IPv6 address has 16 bytes")
        var h: UInt64 = 0
        var l: UInt64 = 0
        withUnsafeMutableBytes(of: &h) { $0.copyBytes(from: bytes[0..<8]) }
        withUnsafeMutableBytes(of: &l) { $0.copyBytes(from: bytes[8..<16]) }
        self.init(high: h, low: l)
    }

    /// The 16 bytes in network order.
    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(16)
        withUnsafeBytes(of: high) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: low) { out.append(contentsOf: $0) }
        return out
    }
}

/// An IP address of either family.
public enum IPAddress: Hashable, Sendable {
    case v4(IPv4Address)
    case v6(IPv6Address)

    /// Parses dotted-quad IPv4 or textual IPv6 (RFC 4291/5952 forms); nil when it is neither.
    public init?(_ text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self = .v4(IPv4Address(rawValue: v4.s_addr))
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            self = .v6(withUnsafeBytes(of: v6) { IPv6Address(bytes: Array($0)) })
            return
        }
        return nil
    }

    /// The unspecified address of a family (0.0.0.0 or ::).
    public static let anyV4 = IPAddress.v4(IPv4Address(rawValue: 0))
    public static let anyV6 = IPAddress.v6(IPv6Address(high: 0, low: 0))

    /// 0.0.0.0 or ::.
    public var isUnspecified: Bool {
        switch self {
        case .v4(let a): return a.rawValue == 0
        case .v6(let a): return a.high == 0 && a.low == 0
        }
    }

    /// 127.0.0.0/8 or ::1.
    public var isLoopback: Bool {
        switch self {
        case .v4(let a): return UInt32(bigEndian: a.rawValue) >> 24 == 127
        case .v6(let a): return a.high == 0 && a.low == UInt64(1).bigEndian
        }
    }

    public var isIPv6: Bool {
        if case .v6 = self { return true }
        return false
    }
}

extension IPAddress: CustomStringConvertible {
    public var description: String {
        switch self {
        case .v4(let a):
            let addr = in_addr(s_addr: a.rawValue)
            return withUnsafeBytes(of: addr) { Self.format(family: AF_INET, $0.baseAddress!, capacity: Int(INET_ADDRSTRLEN)) }
        case .v6(let a):
            var addr = in6_addr()
            withUnsafeMutableBytes(of: &addr) { $0.copyBytes(from: a.bytes) }
            return withUnsafeBytes(of: addr) { Self.format(family: AF_INET6, $0.baseAddress!, capacity: Int(INET6_ADDRSTRLEN)) }
        }
    }

    private static func format(family: Int32, _ addr: UnsafeRawPointer, capacity: Int) -> String {
        var buffer = [CChar](repeating: 0, count: capacity)
        _ = inet_ntop(family, addr, &buffer, socklen_t(capacity))
        return String(cString: buffer)
    }
}
