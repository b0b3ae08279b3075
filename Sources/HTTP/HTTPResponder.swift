import Glibc
import LinuxNet
import RelayCore
import Synchronization

/// A small HTTP/1.1 server on its own thread, for endpoints that answer GET and HEAD with one
/// short response (Prometheus `/metrics`, `/healthz`). Never on a worker: the datapath does not
/// notice a scrape, a slow client or a flood of connections here.
///
/// Bounded in every direction, because the port may be reachable from a LAN: a request head is
/// at most 8 KiB (`HTTPRequestHead`), each connection gets `requestTimeout` from accept to its
/// last byte written (a slowloris is closed at that deadline), at most `maxConnections` are
/// open (a new one displaces the oldest, so a flood of idle connections cannot lock a scraper
/// out), and every connection closes after its one response.
public final class HTTPResponder: @unchecked Sendable {
    public struct Limits: Sendable {
        public var maxConnections = 64
        public var requestTimeoutMilliseconds = 5_000
        public init() {}
    }

    /// Makes the response to one request; runs on the responder's thread.
    public typealias Handler = @Sendable (HTTPRequestHead) -> HTTPResponse

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
        do {
            epoll = try Epoll(capacity: 64)
            wakeup = try EventNotifier()
            try epoll.add(wakeup.fd, token: Self.wakeToken)
            for (i, listener) in listeners.enumerated() { try epoll.add(listener.fd, token: Self.listenerToken | UInt64(i)) }
        } catch {
            throw RelayError(.invalidConfiguration, "\(name): \(error)")
        }
        connections = Array(repeating: nil, count: max(1, limits.maxConnections))
    }

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
        let deadline: UInt64
        let opened: UInt64
        let received = UnsafeMutableRawBufferPointer.allocate(byteCount: HTTPRequestHead.maxHeadLength, alignment: 1)
        var count = 0
        var output: [UInt8]?
        var written = 0

        init(socket: Socket, now: UInt64, timeout: UInt64) {
            self.socket = socket
            opened = now
            deadline = now + timeout
        }

        deinit {
            received.deallocate()
            socket.close()
        }
    }

    private func run() {
        while !stopping.withLock({ $0 }) {
            let now = SystemInfo.monotonicNanoseconds()
            var timeout: Int32 = 1000
            if pausedUntil != 0 {
                if now >= pausedUntil { resumeAccepting() } else { timeout = Int32((pausedUntil - now) / 1_000_000 + 1) }
            }
            for case let connection? in connections {
                timeout = min(timeout, connection.deadline <= now ? 0 : Int32((connection.deadline - now) / 1_000_000 + 1))
            }
            _ = try? epoll.wait(timeoutMilliseconds: timeout) { token, events in
                switch token & Self.kindMask {
                case Self.wakeToken: wakeup.drain()
                case Self.listenerToken: accept(Int(token & 0xFFFF))
                case Self.connectionToken: service(Int(token & 0xFFFF), events: events)
                default: break
                }
            }
            closeExpired(now: SystemInfo.monotonicNanoseconds())
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

    private func accept(_ listener: Int) {
        while true {
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
            guard let (socket, _) = accepted else { return }
            let now = SystemInfo.monotonicNanoseconds()
            let slot: Int
            if let free = connections.firstIndex(where: { $0 == nil }) {
                slot = free
            } else {
                // Full: the oldest connection gives way (an honest client finishes in milliseconds).
                slot = connections.indices.min { connections[$0]!.opened < connections[$1]!.opened }!
                counters.withLock { $0.displaced += 1 }
                close(slot)
            }
            let connection = Connection(socket: socket, now: now, timeout: UInt64(limits.requestTimeoutMilliseconds) * 1_000_000)
            guard (try? epoll.add(socket.fd, token: Self.connectionToken | UInt64(slot))) != nil else { continue }
            connections[slot] = connection
            counters.withLock { $0.accepted += 1 }
        }
    }

    private func service(_ slot: Int, events: Epoll.Events) {
        guard let connection = connections[slot] else { return }
        if connection.output != nil {
            flush(slot)
            return
        }
        let room = UnsafeMutableRawBufferPointer(rebasing: connection.received[connection.count...])
        switch connection.socket.read(into: room) {
        case .bytes(let n):
            connection.count += n
        case .wouldBlock:
            return
        case .closed, .failed:
            close(slot)
            return
        }
        let response: HTTPResponse
        var headOnly = false
        switch HTTPRequestHead.parse(UnsafeRawBufferPointer(rebasing: connection.received[0..<connection.count])) {
        case .incomplete:
            return
        case .request(let head):
            headOnly = head.method == .head
            response = handler(head)
        case .refuse(let status):
            counters.withLock { $0.refused += 1 }
            response = .refusal(status)
        }
        connection.output = response.serialized(headOnly: headOnly)
        epoll.modify(connection.socket.fd, token: Self.connectionToken | UInt64(slot), events: .writable)
        flush(slot)
    }

    /// Writes what the socket takes; closes once the response is out.
    private func flush(_ slot: Int) {
        guard let connection = connections[slot], let output = connection.output else { return }
        while connection.written < output.count {
            let result = output.withUnsafeBytes { connection.socket.write(UnsafeRawBufferPointer(rebasing: $0[connection.written...])) }
            switch result {
            case .bytes(let n): connection.written += n
            case .wouldBlock: return
            case .closed, .failed:
                close(slot)
                return
            }
        }
        close(slot)
    }

    private func closeExpired(now: UInt64) {
        for index in connections.indices {
            guard let connection = connections[index], connection.deadline <= now else { continue }
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
