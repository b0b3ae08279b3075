import LinuxNet
import RelayCore

/// A client's TCP connection, accepted on a transparent listener: its local address is the
/// original destination, so answers written here come from the server the client asked.
final class ClientConnection {
    let socket: Socket
    let client: Endpoint
    /// The address the client connected to (getsockname of the accepted socket).
    let origin: Endpoint
    /// Distinguishes this connection from a later one in the same slot (answers to a closed
    /// connection must not reach its successor).
    let generation: UInt32
    let reader: FrameReader
    let output = OutputQueue()
    let opened: UInt64
    /// Last complete query read or answer written.
    var lastActivity: UInt64
    var queries = 0
    /// Queries forwarded and not yet answered.
    var inFlight = 0
    /// No more queries are read; close once answers in flight are written.
    var closing = false
    var watchingWrites = false

    init(socket: Socket, client: Endpoint, origin: Endpoint, generation: UInt32, maxMessage: Int, now: UInt64) {
        self.socket = socket
        self.client = client
        self.origin = origin
        self.generation = generation
        reader = FrameReader(maxMessage: maxMessage)
        opened = now
        lastActivity = now
    }
}
