import DNS
import Glibc
import LinuxNet
import RelayCore

/// Upstream TCP: queries that came over TCP, and UDP queries whose answer came back truncated.
/// Connections are reused with pipelining, a few per server, and carry the bypass mark.
extension Worker {
    /// Queries pipelined on one upstream connection before another is opened.
    static let pipelineDepth = 64
    /// Upstream connections per server at most.
    static let connectionsPerServer = 4

    /// Sends entry `index` over TCP to `server` and schedules its timeout; SERVFAIL when no
    /// connection can be made.
    func sendTCP(_ index: Int, to server: Endpoint, now: UInt64) {
        guard let slot = upstreamConnection(to: server, now: now), let connection = upstreamConnections[slot] else {
            counters.upstreamTCPFailures += 1
            failQuery(index)
            return
        }
        inFlight[index].upstreamConnection = Int32(slot)
        inFlight[index].upstreamFD = -1
        inFlight[index].server = server
        inFlight.schedule(index, deadline: now + settings.timeoutNanoseconds)
        connection.waiting.append(index)
        connection.output.append(message: inFlight.query(index))
        if connection.connected { flushUpstream(slot, connection) }
    }

    /// A connection to `server` with room in its pipeline, opened when needed.
    private func upstreamConnection(to server: Endpoint, now: UInt64) -> Int? {
        let existing = connectionsByServer[server] ?? []
        var best: Int?
        var live = 0
        for slot in existing {
            guard let c = upstreamConnections[slot], !c.retired else { continue }
            live += 1
            if best == nil || c.waiting.count < upstreamConnections[best!]!.waiting.count { best = slot }
        }
        if let best, upstreamConnections[best]!.waiting.count < Worker.pipelineDepth || live >= Worker.connectionsPerServer {
            return best
        }
        // The descriptor budget's share for upstream connections: past it, queue on the best.
        guard upstreamConnections.count < settings.maxUpstreamConnections else { return best }
        do {
            let socket = try Socket.tcp(for: server)
            try socket.set(.mark(settings.bypassMark))
            try socket.startConnect(to: server)
            let slot = upstreamConnections.insert(UpstreamConnection(server: server, socket: socket, now: now))
            try epoll.add(socket.fd, token: Token.upstreamConnection | UInt64(slot), events: [.readable, .writable])
            connectionsByServer[server, default: []].append(slot)
            return slot
        } catch {
            warn("cannot connect to \(server) over TCP: \(error)")
            return best
        }
    }

    func serviceUpstream(_ slot: Int, events: Epoll.Events) {
        guard let connection = upstreamConnections[slot] else { return }
        if !connection.connected {
            guard events.contains(.writable) || events.contains(.closed) else { return }
            if let error = connection.socket.pendingError() {
                warn("TCP connection to \(connection.server) failed: \(error)")
                failUpstream(slot)
                return
            }
            connection.connected = true
        }
        if events.contains(.writable) { flushUpstream(slot, connection) }
        if events.contains(.readable) || events.contains(.closed) { readAnswers(slot, connection) }
    }

    private func flushUpstream(_ slot: Int, _ connection: UpstreamConnection) {
        if !flush(connection.output, to: connection.socket, token: Token.upstreamConnection | UInt64(slot),
                  watchingWrites: &connection.watchingWrites) {
            failUpstream(slot)
        }
    }

    private func readAnswers(_ slot: Int, _ connection: UpstreamConnection) {
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
                failUpstream(slot)
                return
            }
            while true {
                switch connection.reader.next() {
                case .incomplete:
                    break
                case .invalid:
                    failUpstream(slot)
                    return
                case .message(let message):
                    connection.partialSince = 0
                    takeAnswer(message, slot: slot, connection: connection)
                    guard upstreamConnections[slot] === connection else { return }
                    continue
                }
                break
            }
            if !connection.reader.hasPartialMessage {
                connection.partialSince = 0
            } else if connection.partialSince == 0 {
                connection.partialSince = now
            }
            // Answers for UDP clients point into the reader's buffer: send before the next read.
            clientSender.flush()
        }
    }

    /// The RFC 5452 checks, over TCP: ID, the connection it came on (so the server), question.
    private func takeAnswer(_ message: UnsafeMutableRawBufferPointer, slot: Int, connection: UpstreamConnection) {
        let base = message.baseAddress!
        guard DNSHeader.isResponse(base), let index = inFlight.lookup(id: DNSHeader.id(base)),
              inFlight[index].upstreamConnection == Int32(slot),
              Question.matches(query: inFlight.query(index), end: inFlight[index].questionEnd, response: UnsafeRawBufferPointer(message))
        else {
            counters.upstreamMismatches += 1
            return
        }
        if let position = connection.waiting.firstIndex(of: index) { connection.waiting.remove(at: position) }
        deliver(index, answer: message, length: message.count)
    }

    /// Drops an entry from the wait list of its upstream connection (it timed out). A connection
    /// on which nothing at all arrived since that query was sent takes no more queries: a server
    /// that went silent on a stream would otherwise make every later query wait out its timeout.
    func forgetUpstreamWait(_ index: Int) {
        let slot = Int(inFlight[index].upstreamConnection)
        if let connection = upstreamConnections[slot] {
            if let position = connection.waiting.firstIndex(of: index) { connection.waiting.remove(at: position) }
            let sentAt = inFlight[index].deadline &- settings.timeoutNanoseconds
            if connection.lastActivity <= sentAt && !connection.retired {
                connection.retired = true
                counters.upstreamTCPStalled += 1
            }
        }
        inFlight[index].upstreamConnection = -1
    }

    /// How long one answer may take to arrive once its first bytes did: a server sends a message
    /// in one go, so a message stuck half-way this long means the stream is stuck.
    static let stalledMessageNanoseconds: UInt64 = 500_000_000

    /// Closes upstream connections stuck mid-message (what waits on them gets SERVFAIL at once
    /// rather than after its timeout, and new queries get a fresh connection), and retired ones
    /// that nothing waits on any more. Part of the 100 ms sweep.
    func sweepUpstreamConnections(now: UInt64, idle: UInt64) {
        for slot in upstreamConnections.occupied {
            guard let connection = upstreamConnections[slot] else { continue }
            if connection.partialSince != 0 && now &- connection.partialSince >= Worker.stalledMessageNanoseconds {
                counters.upstreamTCPStalled += 1
                failUpstream(slot)
            } else if connection.waiting.isEmpty && (connection.retired || now &- connection.lastActivity > idle) {
                closeUpstream(slot)
            }
        }
    }

    /// The connection failed or was closed: every query waiting on it gets SERVFAIL (one failure
    /// counted), and the connection is closed.
    func failUpstream(_ slot: Int) {
        guard let connection = upstreamConnections[slot] else { return }
        if !connection.waiting.isEmpty { counters.upstreamTCPFailures += 1 }
        let waiting = connection.waiting
        connection.waiting = []
        closeUpstream(slot)
        for index in waiting where inFlight[index].inUse && inFlight[index].upstreamConnection == Int32(slot) {
            failQuery(index)
        }
        clientSender.flush()
    }

    func closeUpstream(_ slot: Int) {
        guard let connection = upstreamConnections[slot] else { return }
        epoll.remove(connection.socket.fd)
        connection.socket.close()
        upstreamConnections.remove(slot)
        connectionsByServer[connection.server]?.removeAll { $0 == slot }
        if connectionsByServer[connection.server]?.isEmpty == true { connectionsByServer[connection.server] = nil }
    }
}
