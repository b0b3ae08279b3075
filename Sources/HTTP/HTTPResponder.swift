import Glibc
import LinuxNet
import RelayCore
import Synchronization

/// A small HTTP/1.1 server on its own thread: one request per connection, answered with one
/// response or a stream (Server-Sent Events). Serves Prometheus `/metrics` and `/healthz` (GET
/// and HEAD only) and the web dashboard (POST with small bodies, streams). Never on a worker:
/// the datapath does not notice a scrape, a slow client or a flood of connections here.
///
/// Bounded in every direction, because the port may be reachable from a LAN: a request head is
/// at most 8 KiB (`HTTPRequestHead`), a body at most `maxBodyBytes`, each connection gets
/// `requestTimeout` from accept to its last byte written (a slowloris is closed at that
/// deadline), at most `maxConnections` are open (a new one displaces the oldest that has sent
/// no request, else the oldest being answered, never a stream, so a flood of idle connections
/// cannot lock a scraper or an admin out), at most `maxStreams` of them streams, and a stream
/// whose reader falls `maxStreamBacklog` bytes behind is closed.
public final class HTTPResponder: @unchecked Sendable {
    public struct Limits: Sendable {
        public var maxConnections = 64
        public var requestTimeoutMilliseconds = 5_000
        /// Largest request body read (larger: 413); 0 with `acceptsPost` false: GET and HEAD only.
        public var maxBodyBytes = 0
        /// Whether POST reaches the handler (otherwise 405, as for any other method).
        public var acceptsPost = false
        /// Open streams at most (a further one is answered 503).
        public var maxStreams = 0
        /// Bytes a stream may have waiting for its reader before it is closed.
        public var maxStreamBacklog = 1 << 20
        public init() {}
    }

    /// Makes the reply to one request; runs on the responder's thread.
    public typealias Handler = @Sendable (HTTPRequest) -> HTTPReply

    /// Called on the responder's thread at every turn of its loop (at least once a second), with
    /// the monotonic clock; set before `start()`.
    public var onTurn: (@Sendable (UInt64) -> Void)?

    private let name: String
    private let limits: Limits
    private let handler: Handler
    private let listeners: [Socket]
    private let epoll: Epoll
    private let wakeup: EventNotifier
    private var connections: [Connection?]
    private var thread: SystemThread?
    /// Set by `stop()`, read by the loop (the notifier wakes it).
    private let stopping = Mutex(false)
    /// Connections displaced by newer ones, and connections closed at their deadline.
    public let counters = Mutex(Counters())

    public struct Counters: Sendable, Equatable {
        public var accepted = 0
        public var displaced = 0
        public var timedOut = 0
        public var refused = 0
        /// Streams opened, and those closed because their reader fell behind.
        public var streams = 0
        public var streamsBehind = 0
        /// Times accepting stopped for a moment because accept failed (out of descriptors).
        public var acceptPaused = 0
    }

    /// The addresses the listeners are bound to (the kernel's port when 0 was asked).
    public let endpoints: [Endpoint]

    /// Binds and listens on every endpoint (throws the first failure, naming it); `start()`
    /// then serves.
    public init(name: String, endpoints: [Endpoint], limits: Limits = Limits(), handler: @escaping Handler) throws(RelayError) {
        self.name = name
        self.limits = limits
        self.handler = handler
        var listeners: [Socket] = []
        var bound: [Endpoint] = []
        for endpoint in endpoints {
            do {
                let socket = try Socket.tcp(for: endpoint)
                try socket.set(.reuseAddress)
                if endpoint.address.isIPv6 { try socket.set(.ipv6Only) }
                try socket.bind(to: endpoint)
                try socket.listen(backlog: 128)
                bound.append(try socket.localEndpoint())
                listeners.append(socket)
            } catch {
                throw RelayError(.invalidConfiguration, "\(name): cannot listen on \(endpoint): \(error)")
            }
        }
        self.listeners = listeners
        self.endpoints = bound
        listenersReady = [Bool](repeating: false, count: listeners.count)
        do {
            epoll = try Epoll(capacity: 64)
            wakeup = try EventNotifier()
            try epoll.add(wakeup.fd, token: Self.wakeToken)
            for (i, listener) in listeners.enumerated() { try epoll.add(listener.fd, token: Self.listenerToken | UInt64(i)) }
        } catch {
            throw RelayError(.invalidConfiguration, "\(name): \(error)")
        }
        connections = Array(repeating: nil, count: max(1, limits.maxConnections))
        bufferSize = HTTPRequestHead.maxHeadLength + limits.maxBodyBytes
    }

    /// Bytes each connection can hold of its request: the longest head and the largest body.
    private let bufferSize: Int

    /// Starts the thread.
    public func start() throws(Errno) {
        thread = try SystemThread.start(name: String(name.prefix(15))) { [self] in run() }
    }

    /// Stops the thread and closes every socket.
    public func stop() {
        stopping.withLock { $0 = true }
        wakeup.notify()
        thread?.join()
        thread = nil
    }

    // MARK: The loop

    private static let wakeToken: UInt64 = 1 << 40
    private static let listenerToken: UInt64 = 2 << 40
    private static let connectionToken: UInt64 = 3 << 40
    private static let kindMask: UInt64 = 0xFF << 40

    private final class Connection {
        let socket: Socket
        let peer: String
        var deadline: UInt64
        let opened: UInt64
        let received: UnsafeMutableRawBufferPointer
        var count = 0
        var output: [UInt8]?
        var written = 0
        /// Set once the request is answered with a stream: its output is never done.
        var stream: HTTPStream?
        /// The loop's turn when it was accepted: until a later turn it has not been through an
        /// epoll wait, so it is not displaced yet (see `placeForNewcomer`).
        let turn: UInt64

        init(socket: Socket, peer: String, now: UInt64, turn: UInt64, timeout: UInt64, bufferSize: Int) {
            self.socket = socket
            self.peer = peer
            self.turn = turn
            opened = now
            deadline = now + timeout
            received = .allocate(byteCount: bufferSize, alignment: 1)
        }

        deinit {
            received.deallocate()
            socket.close()
        }
    }

    /// Turns of the loop so far (one epoll wait each).
    private var turn: UInt64 = 0
    /// Listeners the current wait reported readable; accepted from after the connections' events,
    /// so a connection whose request came in is answered before newcomers can displace it.
    private var listenersReady: [Bool]

    private func run() {
        while !stopping.withLock({ $0 }) {
            turn &+= 1
            let now = SystemInfo.monotonicNanoseconds()
            var timeout: Int32 = 1000
            if pausedUntil != 0 {
                if now >= pausedUntil { resumeAccepting() } else { timeout = Int32((pausedUntil - now) / 1_000_000 + 1) }
            }
            for case let connection? in connections {
                if connection.stream != nil {
                    timeout = min(timeout, Self.streamTurnMilliseconds)
                } else {
                    timeout = min(timeout, connection.deadline <= now ? 0 : Int32((connection.deadline - now) / 1_000_000 + 1))
                }
            }
            _ = try? epoll.wait(timeoutMilliseconds: timeout) { token, events in
                switch token & Self.kindMask {
                case Self.wakeToken: wakeup.drain()
                case Self.listenerToken: listenersReady[Int(token & 0xFFFF)] = true
                case Self.connectionToken: service(Int(token & 0xFFFF), events: events)
                default: break
                }
            }
            for listener in listenersReady.indices where listenersReady[listener] {
                listenersReady[listener] = false
                accept(listener)
            }
            let after = SystemInfo.monotonicNanoseconds()
            feedStreams(now: after)
            closeExpired(now: after)
            onTurn?(after)
        }
        for index in connections.indices { close(index) }
        for listener in listeners { listener.close() }
    }

    /// Non-zero while the listeners rest after accept failed (out of descriptors): a listener
    /// with a connection waiting stays readable, and retrying at once would spin.
    private var pausedUntil: UInt64 = 0

    private func resumeAccepting() {
        for (i, listener) in listeners.enumerated() { try? epoll.add(listener.fd, token: Self.listenerToken | UInt64(i)) }
        pausedUntil = 0
    }

    /// Where the next accepted connection goes.
    private enum Place {
        case free(Int)
        /// Full: this connection gives way.
        case displacing(Int)
        /// Every slot that could give way holds a connection accepted in this turn: the rest of
        /// the backlog waits for the next turn (the listener stays readable).
        case nextTurn
        /// Every slot is a stream: the newcomer is turned away.
        case refuse
    }

    /// The oldest connection that has sent no request gives way (an honest client sends its
    /// request with its first packet; a flood's connections never do), else the oldest being
    /// answered (its reader is slow), never a stream (someone watching). A connection accepted in
    /// this turn is spared: a burst in the backlog must not push out a request that sits behind
    /// it, unread.
    private func placeForNewcomer() -> Place {
        var waiting: (slot: Int, opened: UInt64)?
        var answering: (slot: Int, opened: UInt64)?
        var sparedThisTurn = false
        for slot in connections.indices {
            guard let connection = connections[slot] else { return .free(slot) }
            guard connection.stream == nil else { continue }
            guard connection.turn < turn else {
                sparedThisTurn = true
                continue
            }
            if connection.output == nil {
                if connection.opened < waiting?.opened ?? .max { waiting = (slot, connection.opened) }
            } else if connection.opened < answering?.opened ?? .max {
                answering = (slot, connection.opened)
            }
        }
        if let slot = waiting?.slot ?? answering?.slot { return .displacing(slot) }
        return sparedThisTurn ? .nextTurn : .refuse
    }

    private func accept(_ listener: Int) {
        while true {
            let place = placeForNewcomer()
            if case .nextTurn = place { return }
            let accepted: (Socket, Endpoint)?
            do {
                accepted = try listeners[listener].accept()
            } catch {
                // EMFILE and the like: stop watching the listeners for 100 ms (the connection
                // waits in the backlog) instead of spinning on a readable listener.
                for listener in listeners { epoll.remove(listener.fd) }
                pausedUntil = SystemInfo.monotonicNanoseconds() + 100_000_000
                counters.withLock { $0.acceptPaused += 1 }
                return
            }
            guard let (socket, peer) = accepted else { return }
            let slot: Int
            switch place {
            case .free(let free):
                slot = free
            case .displacing(let oldest):
                slot = oldest
                counters.withLock { $0.displaced += 1 }
                close(slot)
            case .refuse, .nextTurn:
                socket.close()
                counters.withLock { $0.refused += 1 }
                continue
            }
            let connection = Connection(socket: socket, peer: peer.address.description, now: SystemInfo.monotonicNanoseconds(), turn: turn,
                                        timeout: UInt64(limits.requestTimeoutMilliseconds) * 1_000_000, bufferSize: bufferSize)
            guard (try? epoll.add(socket.fd, token: Self.connectionToken | UInt64(slot))) != nil else { continue }
            connections[slot] = connection
            counters.withLock { $0.accepted += 1 }
            // The request is usually here already (it left with the handshake's last packet):
            // read and answer it now, before the rest of a burst can take the slots.
            service(slot, events: .readable)
        }
    }

    private func service(_ slot: Int, events: Epoll.Events) {
        guard let connection = connections[slot] else { return }
        if connection.stream != nil {
            // A stream reads nothing more: readable means the peer closed (or sent junk).
            if events.contains(.readable) || events.contains(.closed) {
                var sink = [UInt8](repeating: 0, count: 512)
                let result = sink.withUnsafeMutableBytes { connection.socket.read(into: $0) }
                if case .wouldBlock = result {} else {
                    close(slot)
                    return
                }
            }
            if events.contains(.writable) { flush(slot) }
            return
        }
        if connection.output != nil {
            flush(slot)
            return
        }
        let room = UnsafeMutableRawBufferPointer(rebasing: connection.received[connection.count...])
        guard !room.isEmpty else {
            close(slot)  // cannot happen within the bounds above; never spin on a full buffer
            return
        }
        switch connection.socket.read(into: room) {
        case .bytes(let n):
            connection.count += n
        case .wouldBlock:
            return
        case .closed, .failed:
            close(slot)
            return
        }
        var headOnly = false
        let reply: HTTPReply
        switch HTTPRequestHead.parse(UnsafeRawBufferPointer(rebasing: connection.received[0..<connection.count])) {
        case .incomplete:
            return
        case .request(let head):
            headOnly = head.method == .head
            if head.method == .post && !limits.acceptsPost {
                reply = .response(.refusal(.methodNotAllowed))
            } else if head.contentLength > limits.maxBodyBytes {
                reply = .response(.refusal(.payloadTooLarge))
            } else if connection.count < head.length + head.contentLength {
                return  // the body is still coming
            } else {
                let body = Array(connection.received[head.length..<(head.length + head.contentLength)])
                reply = handler(HTTPRequest(head: head, body: body, peer: connection.peer))
            }
        case .refuse(let status):
            counters.withLock { $0.refused += 1 }
            reply = .response(.refusal(status))
        }
        switch reply {
        case .response(let response):
            connection.output = response.serialized(headOnly: headOnly)
        case .stream(let stream):
            let open = connections.reduce(0) { $0 + ($1?.stream != nil ? 1 : 0) }
            if open >= limits.maxStreams {
                connection.output = HTTPResponse.refusal(.serviceUnavailable).serialized()
            } else {
                connection.stream = stream
                connection.output = stream.head
                counters.withLock { $0.streams += 1 }
            }
        }
        epoll.modify(connection.socket.fd, token: Self.connectionToken | UInt64(slot), events: .writable)
        flush(slot)
    }

    /// How often open streams are asked for more (the loop's longest sleep while one is open).
    private static let streamTurnMilliseconds: Int32 = 250

    /// Asks each stream with nothing waiting for its next bytes; closes finished streams and
    /// those whose reader fell too far behind.
    private func feedStreams(now: UInt64) {
        for slot in connections.indices {
            guard let connection = connections[slot], let stream = connection.stream else { continue }
            let waiting = (connection.output?.count ?? 0) - connection.written
            if waiting > limits.maxStreamBacklog {
                counters.withLock { $0.streamsBehind += 1 }
                close(slot, abort: true)
                continue
            }
            switch stream.next(now) {
            case .idle:
                continue
            case .finished:
                close(slot)
            case .bytes(let bytes):
                if var output = connection.output {
                    output.removeFirst(connection.written)
                    output += bytes
                    connection.output = output
                } else {
                    connection.output = bytes
                }
                connection.written = 0
                flush(slot)
            }
        }
    }

    /// Writes what the socket takes; closes once a response is out. A stream stays open, and
    /// waits for writability only while it has bytes waiting.
    private func flush(_ slot: Int) {
        guard let connection = connections[slot], let output = connection.output else { return }
        while connection.written < output.count {
            let result = output.withUnsafeBytes { connection.socket.write(UnsafeRawBufferPointer(rebasing: $0[connection.written...])) }
            switch result {
            case .bytes(let n): connection.written += n
            case .wouldBlock:
                if connection.stream != nil {
                    epoll.modify(connection.socket.fd, token: Self.connectionToken | UInt64(slot), events: [.readable, .writable])
                }
                return
            case .closed, .failed:
                close(slot)
                return
            }
        }
        guard connection.stream != nil else {
            close(slot)
            return
        }
        connection.output = nil
        connection.written = 0
        epoll.modify(connection.socket.fd, token: Self.connectionToken | UInt64(slot), events: .readable)
    }

    private func closeExpired(now: UInt64) {
        for index in connections.indices {
            guard let connection = connections[index], connection.stream == nil, connection.deadline <= now else { continue }
            // Counted before the close: a peer that sees the close may read the counters at once.
            counters.withLock { $0.timedOut += 1 }
            close(index, abort: true)
        }
    }

    private func close(_ slot: Int, abort: Bool = false) {
        guard let connection = connections[slot] else { return }
        epoll.remove(connection.socket.fd)
        if abort { connection.socket.abort() }
        connections[slot] = nil
    }
}
