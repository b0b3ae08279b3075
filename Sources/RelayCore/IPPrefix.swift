/// An address block, `10.53.1.0/24` or `fd53:1::/64`; a bare address is a /32 or /128.
/// Used to say which clients a rule or a policy covers.
public struct IPPrefix: Hashable, Sendable, CustomStringConvertible {
    /// The first address of the block (host bits cleared).
    public let address: IPAddress
    public let length: Int

    /// Parses `A.B.C.D[/N]` or `X:Y::Z[/N]`; nil for anything else, or a length out of range.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let maximum = address.isIPv6 ? 128 : 32
        var length = maximum
        if parts.count == 2 {
            guard let n = Int(parts[1]), (0...maximum).contains(n), parts[1].allSatisfy(\.isNumber) else { return nil }
            length = n
        }
        self.length = length
        self.address = Self.masked(address, length)
    }

    /// The block of `length` bits around `address` (host bits cleared); `length` is clamped to the
    /// family's size.
    public init(address: IPAddress, length: Int) {
        let length = max(0, min(length, address.isIPv6 ? 128 : 32))
        self.length = length
        self.address = Self.masked(address, length)
    }

    /// True when `candidate` lies inside the block (never across families).
    @inline(__always)
    public func contains(_ candidate: IPAddress) -> Bool {
        switch (address, candidate) {
        case (.v4(let mine), .v4(let theirs)):
            let mask: UInt32 = length == 0 ? 0 : ~UInt32(0) << (32 - length)
            return UInt32(bigEndian: mine.rawValue) == UInt32(bigEndian: theirs.rawValue) & mask
        case (.v6(let mine), .v6(let theirs)):
            let (high, low) = Self.masks(length)
            return UInt64(bigEndian: mine.high) == UInt64(bigEndian: theirs.high) & high
                && UInt64(bigEndian: mine.low) == UInt64(bigEndian: theirs.low) & low
        default:
            return false
        }
    }

    public var description: String { "\(address)/\(length)" }

    private static func masks(_ length: Int) -> (UInt64, UInt64) {
        let high: UInt64 = length >= 64 ? ~0 : length == 0 ? 0 : ~UInt64(0) << (64 - length)
        let low: UInt64 = length >= 128 ? ~0 : length <= 64 ? 0 : ~UInt64(0) << (128 - length)
        return (high, low)
    }

    private static func masked(_ address: IPAddress, _ length: Int) -> IPAddress {
        switch address {
        case .v4(let a):
            let mask: UInt32 = length == 0 ? 0 : ~UInt32(0) << (32 - length)
            return .v4(IPv4Address(rawValue: (UInt32(bigEndian: a.rawValue) & mask).bigEndian))
        case .v6(let a):
            let (high, low) = masks(length)
            return .v6(IPv6Address(high: (UInt64(bigEndian: a.high) & high).bigEndian, low: (UInt64(bigEndian: a.low) & low).bigEndian))
        }
    }
}
