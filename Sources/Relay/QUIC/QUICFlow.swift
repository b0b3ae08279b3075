import LinuxNet
import Pipeline
import QueryLog
import QUIC
import RelayCore

/// Which flow a datagram belongs to: the client and the address it sent to (its original
/// destination). A client's connection to one server is one flow, whatever its connection IDs.
struct QUICFlowKey: Hashable {
    var client: Endpoint
    var destination: Endpoint
}

/// One relayed QUIC flow: its upstream socket (connected to the original destination, carrying
/// the bypass mark), where it stands (reading the SNI, relaying, or blocked), the datagrams held
/// while the SNI is read, and what the query log needs when the flow ends. A class, allocated
/// once per flow; nothing here is allocated per datagram once the flow relays.
final class QUICFlow {
    enum State { case sniffing, relaying, blocked }

    let key: QUICFlowKey
    /// Distinguishes this flow from an earlier one in the same slot (epoll tokens carry it).
    let generation: UInt32
    var state: State
    var upstream: Socket?
    var sniffer: InitialSniffer?
    /// Reads a ClientHello that starts after the flow was decided (a new Initial on the same
    /// client and server): every ClientHello that passes the relay meets the rules.
    var lateSniffer: InitialSniffer?
    /// Client datagrams held while the SNI is read, in arrival order.
    var held: [[UInt8]] = []
    /// Monotonic ns: start, last datagram either way, and when held datagrams go regardless.
    let startedAt: UInt64
    var lastActive: UInt64
    var holdUntil: UInt64
    /// Wall-clock µs of the first datagram (the log entry's time).
    let startedWall: UInt64
    var serverName: String?
    var version: UInt32 = 0
    /// Why no SNI was read, when none was.
    var sniFailure: SNIFailure.Code?
    var action: QueryLogRecord.Action = .allowed
    var rule = RuleOrigin.none
    var bytesUp: UInt64 = 0
    var bytesDown: UInt64 = 0
    var packetsUp: UInt64 = 0
    var packetsDown: UInt64 = 0

    init(key: QUICFlowKey, generation: UInt32, state: State, now: UInt64, wall: UInt64, holdUntil: UInt64) {
        self.key = key
        self.generation = generation
        self.state = state
        startedAt = now
        lastActive = now
        self.holdUntil = holdUntil
        startedWall = wall
    }
}
