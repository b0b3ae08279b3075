import LinuxNet
import RelayCore

/// A TCP connection from the relay to an upstream server, carrying pipelined queries whose
/// answers may come back in any order (matched by ID and question, as for UDP).
///
/// With `source` it is IP_TRANSPARENT and bound to a client's address: the server sees the
/// client, and its answers come back to this host by the table's `socket transparent` rule.
final class UpstreamConnection {
    let server: Endpoint
    /// The client address it leaves from (`upstream.client_identity: source`), or nil: this host's own.
    let source: IPAddress?
    let socket: Socket
    let reader = FrameReader(maxMessage: 65535)
    let output = OutputQueue()
    var connected = false
    var watchingWrites = true
    /// In-flight entries waiting for an answer on this connection.
    var waiting: [Int] = []
    /// When bytes last arrived (or the connection was opened).
    var lastActivity: UInt64
    /// When the message now partly read started arriving; 0 when none is.
    var partialSince: UInt64 = 0
    /// Takes no new queries: a query on it timed out with nothing heard since it was sent.
    /// Closed once nothing waits on it.
    var retired = false

    init(server: Endpoint, source: IPAddress?, socket: Socket, now: UInt64) {
        self.server = server
        self.source = source
        self.socket = socket
        lastActivity = now
    }
}
