import DNS
import Glibc
import LinuxNet
import RelayCore

/// Upstream TCP, one set per worker: queries that came over TCP, and UDP queries whose answer
/// came back truncated. Connections are reused with pipelining, a few per server, and carry the
/// bypass mark. It owns the connections and their counters; queries come from the worker's
/// in-flight table, and answers that pass the RFC 5452 checks go back through `onAnswer`.
final class UpstreamTCP {
    /// Queries pipelined on one upstream connection before another is opened.
    static let pipelineDepth = 64
    /// Upstream connections per server at most.
    static let connectionsPerServer = 4
    /// How long one answer may take to arrive once its first bytes did: a server sends a message
    /// in one go, so a message stuck half-way this long means the stream is stuck.
    static let stalledMessageNanoseconds: UInt64 = 500_000_000

    private let inFlight: InFlightTable
    private let epoll: Epoll
    private let bypassMark: UInt32
    private let timeoutNanoseconds: UInt64
    /// The descriptor budget's share for upstream connections (DescriptorBudget).
    private let maxConnections: Int
    private var connections = Slots<UpstreamConnection>()
    /// Connections by server and the address they leave from.
    private var byRoute: [Route: [Int]] = [:]
    var counters = Counters()
    /// An answer for entry `index` (its bytes, writable, in the connection's reader).
    var onAnswer: (Int, UnsafeMutableRawBufferPointer) -> Void = { _, _ in }
    /// Entry `index` cannot be answered (SERVFAIL, or a stale answer).
    var onFailure: (Int) -> Void = { _ in }
    /// An answer on the connection to this server matched no query it carries (counted here too).
    var onMismatch: (Endpoint) -> Void = { _ in }
    /// Answers for UDP clients point into a reader's buffer: the worker sends them before it is read again.
    var onBatchEnd: () -> Void = {}
    private let warn: (String) -> Void

    init(inFlight: InFlightTable, epoll: Epoll, bypassMark: UInt32, timeoutNanoseconds: UInt64, maxConnections: Int,
         warn: @escaping (String) -> Void) {
        self.inFlight = inFlight
        self.epoll = epoll
        self.bypassMark = bypassMark
        self.timeoutNanoseconds = timeoutNanoseconds
        self.maxConnections = maxConnections
        self.warn = warn
    }

    /// A server, and the client address a connection to it leaves from (nil: this host's own).
    struct Route: Hashable {
        var server: Endpoint
        var source: IPAddress?
    }

    /// Sends entry `index` over TCP to `server` and schedules its timeout; false (counted) when
    /// no connection can be made: the caller fails the query. `source`: leave from this client
    /// address (`upstream.client_identity: source`); when no such connection can be made (the
    /// families differ, the descriptor budget is spent), the query leaves from this host's own
    /// address (the entry's `leftFromClient` says which).
    func send(_ index: Int, to server: Endpoint, source: IPAddress? = nil, now: UInt64) -> Bool {
        var slot: Int?
        if let source, source.isIPv6 == server.address.isIPv6 { slot = connection(to: Route(server: server, source: source), now: now) }
        if slot == nil {
            if source != nil { counters.sourceFallbacks += 1 }
            slot = connection(to: Route(server: server, source: nil), now: now)
        }
        guard let slot, let connection = connections[slot] else {
            counters.upstreamTCPFailures += 1
            return false
        }
        inFlight[index].upstreamConnection = Int32(slot)
        inFlight[index].upstreamFD = -1
        inFlight[index].server = server
        inFlight[index].leftFromClient = connection.source != nil
        inFlight.schedule(index, deadline: now + timeoutNanoseconds)
        connection.waiting.append(index)
        connection.output.append(message: inFlight.query(index))
        if connection.connected { flush(slot, connection) }
        return true
    }

    /// A connection for `route` with room in its pipeline, opened when needed.
    private func connection(to route: Route, now: UInt64) -> Int? {
        let server = route.server
        let existing = byRoute[route] ?? []
        var best: Int?
        var live = 0
        for slot in existing {
            guard let c = connections[slot], !c.retired else { continue }
            live += 1
            if best == nil || c.waiting.count < connections[best!]!.waiting.count { best = slot }
        }
        if let best, connections[best]!.waiting.count < Self.pipelineDepth || live >= Self.connectionsPerServer {
            return best
        }
        // Past the descriptor budget's share: queue on the best connection there is.
        guard connections.count < maxConnections else { return best }
        do {
            let socket = try Socket.tcp(for: server)
            try socket.set(.mark(bypassMark))
            if let source = route.source {
                try socket.set(.transparent)
                try socket.bind(to: Endpoint(address: source, port: 0))
            }
            try socket.startConnect(to: server)
            let slot = connections.insert(UpstreamConnection(server: server, source: route.source, socket: socket, now: now))
            try epoll.add(socket.fd, token: EpollToken.upstreamConnection | UInt64(slot), events: [.readable, .writable])
            byRoute[route, default: []].append(slot)
            if route.source != nil { counters.sourceSocketsOpened += 1 }
            return slot
        } catch {
            warn("cannot connect to \(server) over TCP" + (route.source.map { " from \($0)" } ?? "") + ": \(error)")
            return best
        }
    }

    func service(_ slot: Int, events: Epoll.Events) {
        guard let connection = connections[slot] else { return }
        if !connection.connected {
            guard events.contains(.writable) || events.contains(.closed) else { return }
            if let error = connection.socket.pendingError() {
                warn("TCP connection to \(connection.server) failed: \(error)")
                fail(slot)
                return
            }
            connection.connected = true
        }
        if events.contains(.writable) { flush(slot, connection) }
        if events.contains(.readable) || events.contains(.closed) { read(slot, connection) }
    }

    private func flush(_ slot: Int, _ connection: UpstreamConnection) {
        if !connection.output.flush(to: connection.socket, epoll: epoll, token: EpollToken.upstreamConnection | UInt64(slot),
                                    watchingWrites: &connection.watchingWrites) {
            fail(slot)
        }
    }

    private func read(_ slot: Int, _ connection: UpstreamConnection) {
        for _ in 0..<Worker.roundsPerEvent {
            let space = connection.reader.readableSpace()
            let now: UInt64
            switch connection.socket.read(into: space) {
            case .bytes(let n):
                connection.reader.commit(n)
                now = SystemInfo.monotonicNanoseconds()
                connection.lastActivity = now
            case .wouldBlock:
                return
            case .closed, .failed:
                // Closed by the server, possibly mid-message: whatever still waits fails.
                fail(slot)
                return
            }
            reading: while true {
                switch connection.reader.next() {
                case .incomplete:
                    break reading
                case .invalid:
                    fail(slot)
                    return
                case .message(let message):
                    connection.partialSince = 0
                    take(message, slot: slot, connection: connection)
                    guard connections[slot] === connection else { return }
                }
            }
            if !connection.reader.hasPartialMessage {
                connection.partialSince = 0
            } else if connection.partialSince == 0 {
                connection.partialSince = now
            }
            onBatchEnd()
        }
    }

    /// The RFC 5452 checks, over TCP: ID, the connection it came on (so the server), question.
    private func take(_ message: UnsafeMutableRawBufferPointer, slot: Int, connection: UpstreamConnection) {
        let base = message.baseAddress!
        guard DNSHeader.isResponse(base), let index = inFlight.lookup(id: DNSHeader.id(base)),
              inFlight[index].upstreamConnection == Int32(slot),
              Question.matches(query: inFlight.query(index), end: inFlight[index].questionEnd, response: UnsafeRawBufferPointer(message))
        else {
            counters.upstreamMismatches += 1
            onMismatch(connection.server)
            return
        }
        if let position = connection.waiting.firstIndex(of: index) { connection.waiting.remove(at: position) }
        onAnswer(index, message)
    }

    /// Drops an entry from the wait list of its connection (it timed out). A connection on which
    /// nothing at all arrived since that query was sent takes no more queries: a server that went
    /// silent on a stream would otherwise make every later query wait out its timeout.
    func forget(_ index: Int) {
        let slot = Int(inFlight[index].upstreamConnection)
        if let connection = connections[slot] {
            if let position = connection.waiting.firstIndex(of: index) { connection.waiting.remove(at: position) }
            let sentAt = inFlight[index].deadline &- timeoutNanoseconds
            if connection.lastActivity <= sentAt && !connection.retired {
                connection.retired = true
                counters.upstreamTCPStalled += 1
            }
        }
        inFlight[index].upstreamConnection = -1
    }

    /// Closes connections stuck mid-message (what waits on them fails at once rather than after
    /// its timeout, and new queries get a fresh connection), and retired or idle ones that
    /// nothing waits on. Part of the 100 ms sweep.
    func sweep(now: UInt64, idle: UInt64) {
        for slot in connections.occupied {
            guard let connection = connections[slot] else { continue }
            if connection.partialSince != 0 && now &- connection.partialSince >= Self.stalledMessageNanoseconds {
                counters.upstreamTCPStalled += 1
                fail(slot)
            } else if connection.waiting.isEmpty && (connection.retired || now &- connection.lastActivity > idle) {
                close(slot)
            }
        }
    }

    /// The connection failed or was closed: every query waiting on it fails (one failure
    /// counted), and the connection is closed.
    private func fail(_ slot: Int) {
        guard let connection = connections[slot] else { return }
        if !connection.waiting.isEmpty { counters.upstreamTCPFailures += 1 }
        let waiting = connection.waiting
        connection.waiting = []
        close(slot)
        for index in waiting where inFlight[index].inUse && inFlight[index].upstreamConnection == Int32(slot) {
            onFailure(index)
        }
        onBatchEnd()
    }

    private func close(_ slot: Int) {
        guard let connection = connections[slot] else { return }
        epoll.remove(connection.socket.fd)
        connection.socket.close()
        connections.remove(slot)
        let route = Route(server: connection.server, source: connection.source)
        byRoute[route]?.removeAll { $0 == slot }
        if byRoute[route]?.isEmpty == true { byRoute[route] = nil }
    }

    func closeAll() {
        for slot in connections.occupied { close(slot) }
    }
}
