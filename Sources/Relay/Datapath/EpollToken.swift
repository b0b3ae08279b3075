/// What an epoll event is about: the kind in the top byte, an index or descriptor below. Each
/// component registers its own descriptors with its own kinds; the worker dispatches on the kind.
enum EpollToken {
    static let udpListener: UInt64 = 0
    static let wake: UInt64 = 1 << 56
    static let tcpListener: UInt64 = 2 << 56
    static let clientConnection: UInt64 = 3 << 56
    static let upstreamConnection: UInt64 = 4 << 56
    static let upstreamSocket: UInt64 = 5 << 56
    static let quicListener: UInt64 = 6 << 56
    /// A QUIC flow's upstream socket: generation in bits 24–55, slot in bits 0–23.
    static let quicFlow: UInt64 = 7 << 56
    static let kindMask: UInt64 = 0xff << 56

    @inline(__always)
    static func index(_ token: UInt64) -> Int { Int(token & ~kindMask) }
}
