import DNS
import Glibc
import LinuxNet
import RelayCore

/// Client TCP connections (RFC 7766): accepted on transparent listeners, length-prefixed
/// queries, pipelined, answered in whatever order upstream answers come, within limits.
extension Worker {
    func acceptClients(_ listener: Socket) {
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
            guard settings.limits.acquire(client.address) else {
                // Over the limit: refuse this one (close at once); the others go on.
                counters.tcpRefused += 1
                socket.close()
                continue
            }
            guard let origin = try? socket.localEndpoint() else {
                settings.limits.release(client.address)
                continue
            }
            let connection = ClientConnection(socket: socket, client: client, origin: origin, generation: nextGeneration,
                                              maxMessage: settings.tcp.maxMessageSize, now: now)
            nextGeneration &+= 1
            let index = clients.insert(connection)
            do {
                try epoll.add(socket.fd, token: Token.clientConnection | UInt64(index))
            } catch {
                clients.remove(index)
                settings.limits.release(client.address)
                continue
            }
            counters.tcpAccepted += 1
        }
    }

    /// How long listeners rest after the process ran out of descriptors.
    static let acceptPause: UInt64 = 100_000_000

    /// Stops watching the TCP listeners until `acceptPause` has passed (`resumeAccepting`).
    func pauseAccepting(now: UInt64) {
        guard acceptPausedUntil == 0 else { return }
        counters.acceptPaused += 1
        acceptPausedUntil = now + Worker.acceptPause
        for listener in tcpListeners { epoll.remove(listener.fd) }
    }

    /// Watches the listeners again once the pause is over; part of the loop's housekeeping.
    func resumeAccepting(now: UInt64) {
        guard acceptPausedUntil != 0, now >= acceptPausedUntil else { return }
        acceptPausedUntil = 0
        for (i, listener) in tcpListeners.enumerated() {
            try? epoll.add(listener.fd, token: Token.tcpListener | UInt64(i))
        }
    }

    func serviceClient(_ index: Int, events: Epoll.Events) {
        guard let connection = clients[index] else { return }
        if events.contains(.writable) {
            flushClient(index, connection)
            guard clients[index] === connection else { return }
        }
        if events.contains(.readable) || events.contains(.closed) {
            readQueries(index, connection)
        }
    }

    private func readQueries(_ index: Int, _ connection: ClientConnection) {
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
                closeClient(index)
                return
            }
            if !takeQueries(index, connection, now: now) { return }
        }
    }

    /// Forwards every complete query buffered on `connection`. False when the connection closed.
    private func takeQueries(_ index: Int, _ connection: ClientConnection, now: UInt64) -> Bool {
        while !connection.closing {
            switch connection.reader.next() {
            case .incomplete:
                return true
            case .invalid:
                counters.tcpMalformed += 1
                closeClient(index)
                return false
            case .message(let message):
                counters.tcpQueries += 1
                connection.queries += 1
                connection.lastActivity = now
                let limit = settings.tcp.maxQueriesPerConnection
                if limit > 0 && connection.queries >= limit { connection.closing = true }
                switch QueryParser.classify(UnsafeRawBufferPointer(message)) {
                case .drop:
                    counters.tcpMalformed += 1
                    closeClient(index)
                    return false
                case .notImplemented:
                    counters.notImplemented += 1
                    let length = ResponseBuilder.headerOnly(rcode: .notImplemented, in: message)
                    record(UnsafeRawBufferPointer(rebasing: message[0..<length]), proto: .tcp, client: connection.client, server: connection.origin, action: .error, rule: Worker.noRule, receivedAt: now)
                    writeAnswer(UnsafeRawBufferPointer(rebasing: message[0..<length]), toClient: index, generation: connection.generation)
                    if clients[index] !== connection { return false }
                case .formatError:
                    // Say why, then close: the stream cannot be trusted past a malformed message.
                    counters.formatErrors += 1
                    counters.tcpMalformed += 1
                    let length = ResponseBuilder.formatError(in: message)
                    connection.closing = true
                    record(UnsafeRawBufferPointer(rebasing: message[0..<length]), proto: .tcp, client: connection.client, server: connection.origin, action: .error, rule: Worker.noRule, receivedAt: now)
                    writeAnswer(UnsafeRawBufferPointer(rebasing: message[0..<length]), toClient: index, generation: connection.generation)
                    return clients[index] === connection
                case .query(let query) where message.count > Worker.maxQueryLength:
                    // Longer than an in-flight slot (4 KiB; real queries are under 300 bytes plus
                    // options): REFUSED with the question, and the connection goes on.
                    counters.droppedOversize += 1
                    answerScratch.baseAddress!.copyMemory(from: message.baseAddress!, byteCount: query.questionEnd)
                    let length = ResponseBuilder.answer(rcode: .refused, in: answerScratch, questionEnd: query.questionEnd, withOPT: query.hasEDNS)
                    record(UnsafeRawBufferPointer(rebasing: answerScratch[0..<length]), proto: .tcp, client: connection.client, server: connection.origin, action: .error, rule: Worker.noRule, receivedAt: now)
                    writeAnswer(UnsafeRawBufferPointer(rebasing: answerScratch[0..<length]), toClient: index, generation: connection.generation)
                    if clients[index] !== connection { return false }
                case .query(let query):
                    if listenerEndpoints.contains(where: { $0.address == connection.origin.address && $0.port == connection.origin.port }) {
                        counters.refusedLoops += 1
                        var copy = [UInt8](UnsafeRawBufferPointer(message)) + [UInt8](repeating: 0, count: 16)
                        let length = copy.withUnsafeMutableBytes {
                            ResponseBuilder.answer(rcode: .refused, in: $0, questionEnd: query.questionEnd, withOPT: query.hasEDNS)
                        }
                        copy.withUnsafeBytes {
                            record(UnsafeRawBufferPointer(rebasing: $0[0..<length]), proto: .tcp, client: connection.client, server: connection.origin, action: .error, rule: Worker.noRule, receivedAt: now)
                            writeAnswer(UnsafeRawBufferPointer(rebasing: $0[0..<length]), toClient: index, generation: connection.generation)
                        }
                        continue
                    }
                    answerScratch.baseAddress!.copyMemory(from: message.baseAddress!, byteCount: message.count)
                    if let length = localAnswer(answerScratch, queryLength: message.count, query: query, limit: 65535) {
                        record(UnsafeRawBufferPointer(rebasing: answerScratch[0..<length]), proto: .tcp, client: connection.client, server: connection.origin, action: .local, rule: Worker.noRule, receivedAt: now)
                        writeAnswer(UnsafeRawBufferPointer(rebasing: answerScratch[0..<length]), toClient: index, generation: connection.generation)
                        if clients[index] !== connection { return false }
                        continue
                    }
                    let admitted: Int?
                    switch filter(answerScratch, queryLength: message.count, query: query, client: connection.client.address, limit: 65535) {
                    case .answered(let length):
                        record(UnsafeRawBufferPointer(rebasing: answerScratch[0..<length]), proto: .tcp, client: connection.client, server: connection.origin, action: decidedAction, rule: decidedOrigin, receivedAt: now)
                        writeAnswer(UnsafeRawBufferPointer(rebasing: answerScratch[0..<length]), toClient: index, generation: connection.generation)
                        if clients[index] !== connection { return false }
                        continue
                    case .forward(let server):
                        if let length = cachedAnswer(UnsafeRawBufferPointer(message), query: query, client: connection.client, destination: connection.origin,
                                                     server: server, limit: 65535, now: now) {
                            counters.answered += 1
                            record(UnsafeRawBufferPointer(rebasing: cacheScratch[0..<length]), proto: .tcp, client: connection.client, server: connection.origin, action: .cached, rule: decidedOrigin, receivedAt: now)
                            writeAnswer(UnsafeRawBufferPointer(rebasing: cacheScratch[0..<length]), toClient: index, generation: connection.generation)
                            if clients[index] !== connection { return false }
                            continue
                        }
                        admitted = admit(UnsafeRawBufferPointer(message), query: query, client: connection.client, destination: connection.origin, server: server)
                    case .alias(let target):
                        if let length = localAliasAnswer(answerScratch, query: query, target: target, limit: 65535) {
                            record(UnsafeRawBufferPointer(rebasing: answerScratch[0..<length]), proto: .tcp, client: connection.client, server: connection.origin, action: .rewritten, rule: decidedOrigin, receivedAt: now)
                            writeAnswer(UnsafeRawBufferPointer(rebasing: answerScratch[0..<length]), toClient: index, generation: connection.generation)
                            if clients[index] !== connection { return false }
                            continue
                        }
                        admitted = admitAlias(UnsafeRawBufferPointer(message), query: query, target: target, client: connection.client, destination: connection.origin)
                    }
                    guard let entry = admitted else { continue }
                    inFlight[entry].receivedAt = now
                    inFlight[entry].tcpClient = Int32(index)
                    inFlight[entry].tcpGeneration = connection.generation
                    connection.inFlight += 1
                    counters.forwarded += 1
                    sendTCP(entry, to: inFlight[entry].server, now: now)
                }
            }
        }
        return true
    }

    /// Queues an answer for a client connection and writes what the socket takes. An answer for
    /// a connection that is gone is dropped; a client that lets answers pile up is disconnected.
    func writeAnswer(_ bytes: UnsafeRawBufferPointer, toClient index: Int, generation: UInt32) {
        guard let connection = clients[index], connection.generation == generation else {
            counters.replyFailures += 1
            return
        }
        if connection.inFlight > 0 { connection.inFlight -= 1 }
        if connection.output.pending + bytes.count + 2 > settings.tcp.maxPendingOutput {
            counters.tcpSlowReaders += 1
            closeClient(index, abort: true)
            return
        }
        connection.output.append(message: bytes)
        connection.lastActivity = SystemInfo.monotonicNanoseconds()
        flushClient(index, connection)
    }

    private func flushClient(_ index: Int, _ connection: ClientConnection) {
        guard flush(connection.output, to: connection.socket, token: Token.clientConnection | UInt64(index),
                    watchingWrites: &connection.watchingWrites)
        else {
            closeClient(index)
            return
        }
        if connection.closing && connection.inFlight == 0 && connection.output.isEmpty {
            closeClient(index)
        }
    }

    /// Closes a client connection; `abort` resets it (for clients that stall: their unread
    /// answers are dropped now rather than held by the kernel).
    /// Writes what the socket takes and watches for writability only while something is left.
    /// False when the connection failed.
    func flush(_ output: OutputQueue, to socket: Socket, token: UInt64, watchingWrites: inout Bool) -> Bool {
        if output.flush(to: socket) != nil { return false }
        let needsWrites = !output.isEmpty
        if needsWrites != watchingWrites {
            watchingWrites = needsWrites
            epoll.modify(socket.fd, token: token, events: needsWrites ? [.readable, .writable] : .readable)
        }
        return true
    }

    func closeClient(_ index: Int, abort: Bool = false) {
        guard let connection = clients[index] else { return }
        epoll.remove(connection.socket.fd)
        if abort { connection.socket.abort() } else { connection.socket.close() }
        settings.limits.release(connection.client.address)
        clients.remove(index)
    }

    /// Closes client connections past their lifetime, or idle (nothing in flight and no complete
    /// query for the idle timeout — a sender that trickles bytes counts as idle), and upstream
    /// connections idle with nothing waiting.
    func sweepConnections(now: UInt64) {
        let idle = UInt64(settings.tcp.idleTimeoutMilliseconds) * 1_000_000
        let lifetime = UInt64(settings.tcp.maxLifetimeMilliseconds) * 1_000_000
        for index in clients.occupied {
            guard let connection = clients[index] else { continue }
            if now - connection.opened > lifetime || (connection.inFlight == 0 && now - connection.lastActivity > idle) {
                counters.tcpClosedIdle += 1
                closeClient(index, abort: true)
            }
        }
        sweepUpstreamConnections(now: now, idle: idle)
    }

    func closeAllConnections() {
        for index in clients.occupied { closeClient(index) }
        for index in upstreamConnections.occupied { closeUpstream(index) }
    }
}
