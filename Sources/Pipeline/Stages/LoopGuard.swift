import RelayCore

/// Selects queries addressed to the relay's own listeners: their "original destination" is the
/// relay itself, and forwarding them there would loop. They are refused.
public struct LoopGuard: Sendable {
    /// The listeners' own addresses.
    public var listeners: [Endpoint]

    public init(listeners: [Endpoint]) { self.listeners = listeners }

    @inline(__always)
    public func isLoop(_ destination: Endpoint) -> Bool { listeners.contains(destination) }
}
