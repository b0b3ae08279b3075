import Configuration
import Glibc
import LinuxNet
import RelayCore

/// Client TCP connections (RFC 7766), one set per worker: accepted on its transparent
/// listeners, read as length-prefixed messages, pipelined, answered in whatever order answers
/// come, within limits. It owns the listeners, the connections and their counters; every
/// complete message goes to `onMessage` (the worker's query path), and answers come back
/// through `write`.
final class ClientTCP {
    /// What the worker does with a message read from a connection.
    enum Next {
        /// Go on reading.
        case more
        /// Answer what is in flight, then close (a FORMERR was written).
        case closeAfterAnswers
        /// Close now (the stream cannot be trusted).
        case closeNow
    }

    let settings: Configuration.TCP
    /// Shared by all workers: TCP connections in total and per client.
    let limits: ConnectionLimits
    private let epoll: Epoll
    private(set) var listeners: [Socket]
    private var connections = Slots<ClientConnection>()
    private var nextGeneration: UInt32 = 1
    /// Non-zero while the listeners rest after EMFILE: when they are watched again.
    private var pausedUntil: UInt64 = 0
    var counters = Counters()
    /// The worker's query path: a complete message, the connection's slot, the connection.
    var onMessage: (UnsafeMutableRawBufferPointer, Int, ClientConnection, UInt64) -> Next = { _, _, _, _ in .more }
    private let warn: (String) -> Void

    /// How long listeners rest after the process ran out of descriptors.
    static let acceptPause: UInt64 = 100_000_000

    init(settings: Configuration.TCP, limits: ConnectionLimits, listeners: [Socket], epoll: Epoll, warn: @escaping (String) -> Void) throws {
        self.settings = settings
        self.limits = limits
        self.listeners = listeners
        self.epoll = epoll
        self.warn = warn
        for (i, listener) in listeners.enumerated() { try epoll.add(listener.fd, token: EpollToken.tcpListener | UInt64(i)) }
    }

    /// The connection in `slot` if it is still the one of `generation`.
    @inline(__always)
    func connection(_ slot: Int, generation: UInt32) -> ClientConnection? {
        guard let c = connections[slot], c.generation == generation else { return nil }
        return c
    }

    // MARK: Accepting

    func accept(listener index: Int) {
        guard index < listeners.count else { return }
        let listener = listeners[index]
        let now = SystemInfo.monotonicNanoseconds()
        for _ in 0..<64 {
            let accepted: (Socket, Endpoint)?
            do { accepted = try listener.accept() } catch {
                if error.rawValue == EMFILE || error.rawValue == ENFILE {
                    // Out of descriptors: the listener would stay readable and the loop spin.
                    // Stop watching it for a moment; the connections wait in the backlog.
                    pauseAccepting(now: now)
                    warn("accept: out of descriptors (\(error)); not accepting for 100 ms")
                    return
                }
                warn("accept failed: \(error)")
                return
            }
            guard let (socket, client) = accepted else { return }
            guard limits.acquire(client.address) else {
                // Over the limit: refuse this one (close at once); the others go on.
                counters.tcpRefused += 1
                socket.close()
                continue
            }
            guard let origin = try? socket.localEndpoint() else {
                limits.release(client.address)
                continue
            }
            let connection = ClientConnection(socket: socket, client: client, origin: origin, generation: nextGeneration,
                                              maxMessage: settings.maxMessageSize, now: now)
            nextGeneration &+= 1
            let slot = connections.insert(connection)
            do {
                try epoll.add(socket.fd, token: EpollToken.clientConnection | UInt64(slot))
            } catch {
                connections.remove(slot)
                limits.release(client.address)
                continue
            }
            counters.tcpAccepted += 1
        }
    }

    /// Stops watching the listeners until `acceptPause` has passed (`resumeAccepting`).
    private func pauseAccepting(now: UInt64) {
        guard pausedUntil == 0 else { return }
        counters.acceptPaused += 1
        pausedUntil = now + Self.acceptPause
        for listener in listeners { epoll.remove(listener.fd) }
    }

    /// Watches the listeners again once the pause is over; part of the loop's housekeeping.
    func resumeAccepting(now: UInt64) {
        guard pausedUntil != 0, now >= pausedUntil else { return }
        pausedUntil = 0
        for (i, listener) in listeners.enumerated() {
            try? epoll.add(listener.fd, token: EpollToken.tcpListener | UInt64(i))
        }
    }

    /// Stops taking connections (the worker is stopping); open ones go on.
    func closeListeners() {
        for listener in listeners {
            epoll.remove(listener.fd)
            listener.close()
        }
        listeners = []
    }

    // MARK: Reading queries

    func service(_ slot: Int, events: Epoll.Events) {
        guard let connection = connections[slot] else { return }
        if events.contains(.writable) {
            flush(slot, connection)
            guard connections[slot] === connection else { return }
        }
        if events.contains(.readable) || events.contains(.closed) {
            read(slot, connection)
        }
    }

    private func read(_ slot: Int, _ connection: ClientConnection) {
        let now = SystemInfo.monotonicNanoseconds()
        for _ in 0..<Worker.roundsPerEvent {
            let space = connection.reader.readableSpace()
            guard space.count > 0 else { return }
            switch connection.socket.read(into: space) {
            case .bytes(let n):
                connection.reader.commit(n)
            case .wouldBlock:
                return
            case .closed, .failed:
                // The client is gone (or half-closed): answers still in flight are dropped when
                // they come, since the slot's generation will not match.
                close(slot)
                return
            }
            if !takeMessages(slot, connection, now: now) { return }
        }
    }

    /// Hands every complete message buffered on `connection` to the worker. False when the
    /// connection closed.
    private func takeMessages(_ slot: Int, _ connection: ClientConnection, now: UInt64) -> Bool {
        while !connection.closing {
            switch connection.reader.next() {
            case .incomplete:
                return true
            case .invalid:
                counters.tcpMalformed += 1
                close(slot)
                return false
            case .message(let message):
                counters.tcpQueries += 1
                connection.queries += 1
                connection.lastActivity = now
                let limit = settings.maxQueriesPerConnection
                if limit > 0 && connection.queries >= limit { connection.closing = true }
                switch onMessage(message, slot, connection, now) {
                case .more:
                    break
                case .closeAfterAnswers:
                    counters.tcpMalformed += 1
                    connection.closing = true
                    if connections[slot] === connection { flush(slot, connection) }
                    return connections[slot] === connection
                case .closeNow:
                    counters.tcpMalformed += 1
                    close(slot)
                    return false
                }
                if connections[slot] !== connection { return false }
            }
        }
        return true
    }

    // MARK: Writing answers

    /// Queues an answer for the connection in `slot` and writes what the socket takes. An answer
    /// for a connection that is gone is dropped; a client that lets answers pile up is
    /// disconnected. `answered`: the answer is for a query that was in flight.
    func write(_ bytes: UnsafeRawBufferPointer, slot: Int, generation: UInt32, answered: Bool = true) {
        guard let connection = connection(slot, generation: generation) else {
            counters.replyFailures += 1
            return
        }
        if answered && connection.inFlight > 0 { connection.inFlight -= 1 }
        if connection.output.pending + bytes.count + 2 > settings.maxPendingOutput {
            counters.tcpSlowReaders += 1
            close(slot, abort: true)
            return
        }
        connection.output.append(message: bytes)
        connection.lastActivity = SystemInfo.monotonicNanoseconds()
        flush(slot, connection)
    }

    private func flush(_ slot: Int, _ connection: ClientConnection) {
        guard connection.output.flush(to: connection.socket, epoll: epoll, token: EpollToken.clientConnection | UInt64(slot),
                                      watchingWrites: &connection.watchingWrites)
        else {
            close(slot)
            return
        }
        if connection.closing && connection.inFlight == 0 && connection.output.isEmpty {
            close(slot)
        }
    }

    // MARK: Closing

    /// Closes a connection; `abort` resets it (for clients that stall: their unread answers are
    /// dropped now rather than held by the kernel).
    func close(_ slot: Int, abort: Bool = false) {
        guard let connection = connections[slot] else { return }
        epoll.remove(connection.socket.fd)
        if abort { connection.socket.abort() } else { connection.socket.close() }
        limits.release(connection.client.address)
        connections.remove(slot)
    }

    /// Closes connections past their lifetime, or idle (nothing in flight and no complete query
    /// for the idle timeout — a sender that trickles bytes counts as idle). Every 100 ms.
    func sweep(now: UInt64) {
        let idle = UInt64(settings.idleTimeoutMilliseconds) * 1_000_000
        let lifetime = UInt64(settings.maxLifetimeMilliseconds) * 1_000_000
        for slot in connections.occupied {
            guard let connection = connections[slot] else { continue }
            if now - connection.opened > lifetime || (connection.inFlight == 0 && now - connection.lastActivity > idle) {
                counters.tcpClosedIdle += 1
                close(slot, abort: true)
            }
        }
    }

    func closeAll() {
        for slot in connections.occupied { close(slot) }
    }
}
