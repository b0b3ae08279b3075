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

/// A TCP connection from the relay to an upstream server, carrying pipelined queries whose
/// answers may come back in any order (matched by ID and question, as for UDP).
final class UpstreamConnection {
    let server: Endpoint
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

    init(server: Endpoint, socket: Socket, now: UInt64) {
        self.server = server
        self.socket = socket
        lastActivity = now
    }
}

/// A fixed set of slots for connections, addressed by index from epoll tokens.
struct Slots<Element: AnyObject> {
    private(set) var items: [Element?] = []
    private var free: [Int] = []
    private(set) var count = 0

    mutating func insert(_ item: Element) -> Int {
        count += 1
        if let index = free.popLast() {
            items[index] = item
            return index
        }
        items.append(item)
        return items.count - 1
    }

    mutating func remove(_ index: Int) {
        guard index < items.count, items[index] != nil else { return }
        items[index] = nil
        free.append(index)
        count -= 1
    }

    subscript(index: Int) -> Element? { index < items.count ? items[index] : nil }

    /// Indices of occupied slots.
    var occupied: [Int] { items.indices.filter { items[$0] != nil } }
}
