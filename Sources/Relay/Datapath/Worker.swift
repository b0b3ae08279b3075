import DNS
import Glibc
import LinuxNet
import Logging
import RelayCore
import Synchronization

/// One datapath thread: its own listeners (SO_REUSEPORT), upstream sockets, reply sockets,
/// in-flight table and counters. Nothing on its path is shared with another worker, nothing is
/// allocated per datagram (ldns' own parse allocations aside), and no Task is involved: a plain
/// epoll loop around recvmmsg/sendmmsg batches.
final class Worker {
    /// What a worker needs to know; fixed for its lifetime.
    struct Settings {
        var index: Int
        var mode: Configuration.UpstreamMode
        var servers: [Endpoint]
        var timeoutNanoseconds: UInt64
        var upstreamSockets: Int
        var maxInFlight: Int
        var bypassMark: UInt32
    }

    static let batchSize = 64
    static let maxQueryLength = 4096
    /// Upstream answers up to 64 KiB are kept whole (memory is only touched as large answers come).
    static let maxAnswerLength = 65535
    /// recvmmsg rounds per readiness event before other sockets get a turn.
    static let roundsPerEvent = 16

    private let settings: Settings
    private let logger: Logger
    private let epoll: Epoll
    private let wakeup: EventNotifier
    private var listeners: [Socket]
    /// The listeners' own addresses: a query whose original destination is one of them was sent
    /// to the relay directly, and forwarding it "to where it was going" would loop.
    private let listenerEndpoints: [Endpoint]
    private let queryReceiver = BatchReceiver(capacity: Worker.batchSize, messageSize: Worker.maxQueryLength)
    private let answerReceiver = BatchReceiver(capacity: Worker.batchSize, messageSize: Worker.maxAnswerLength)
    private let clientSender = BatchSender(capacity: Worker.batchSize * 2)
    private let upstreamSender = BatchSender(capacity: Worker.batchSize * 2)
    private let inFlight: InFlightTable
    private let replySockets = ReplySockets()
    private let random = RandomSource()
    private var pool4: UpstreamSocketPool!
    private var pool6: UpstreamSocketPool?
    /// The upstream socket each family uses for the current batch.
    private var batchFD4: Int32 = -1
    private var batchFD6: Int32 = -1
    private var counters = Counters()
    private var lastWarning: UInt64 = 0

    /// A copy of the counters, refreshed a few times a second, for the service to read.
    let published = Mutex(Counters())
    private let stopRequested = Atomic<Bool>(false)
    private let publishRequested = Atomic<Bool>(false)

    private static let wakeToken: UInt64 = 1 << 40
    private static let upstreamTokenFlag: UInt64 = 1 << 32

    init(settings: Settings, listeners: [Socket], logger: Logger) throws {
        self.settings = settings
        self.listeners = listeners
        self.logger = logger
        listenerEndpoints = listeners.compactMap { try? $0.localEndpoint() }
        epoll = try Epoll(capacity: 64)
        wakeup = try EventNotifier()
        inFlight = InFlightTable(capacity: settings.maxInFlight, maxQueryLength: Worker.maxQueryLength)
        try epoll.add(wakeup.fd, token: Worker.wakeToken)
        for (i, listener) in listeners.enumerated() { try epoll.add(listener.fd, token: UInt64(i)) }
        let now = SystemInfo.monotonicNanoseconds()
        let token: (Int32) -> UInt64 = { Worker.upstreamTokenFlag | UInt64(UInt32(bitPattern: $0)) }
        pool4 = try UpstreamSocketPool(family: AF_INET, count: settings.upstreamSockets, bypassMark: settings.bypassMark,
                                       epoll: epoll, now: now, token: token)
        // IPv6 upstreams are optional: a host without IPv6 still relays IPv4.
        pool6 = try? UpstreamSocketPool(family: AF_INET6, count: settings.upstreamSockets, bypassMark: settings.bypassMark,
                                        epoll: epoll, now: now, token: token)
    }

    /// Asks the loop to stop taking queries, answer what is in flight, and return.
    func requestStop() {
        stopRequested.store(true, ordering: .relaxed)
        wakeup.notify()
    }

    /// Asks the loop to publish its counters now (for SIGUSR1).
    func requestPublish() {
        publishRequested.store(true, ordering: .relaxed)
        wakeup.notify()
    }

    /// The event loop; returns after `requestStop()` once nothing is in flight.
    func run() {
        var draining = false
        var lastPublish: UInt64 = 0
        while true {
            var timeout: Int32 = 200
            if let first = inFlight.earliest {
                let now = SystemInfo.monotonicNanoseconds()
                let deadline = inFlight[first].deadline
                timeout = deadline <= now ? 0 : Int32(min(200, (deadline - now + 999_999) / 1_000_000))
            }
            do {
                _ = try epoll.wait(timeoutMilliseconds: timeout) { token in handle(token: token) }
            } catch {
                warn("epoll_wait failed: \(error)")
            }
            let now = SystemInfo.monotonicNanoseconds()
            expire(now: now)
            pool4.maintain(now: now, timeoutNanoseconds: settings.timeoutNanoseconds)
            pool6?.maintain(now: now, timeoutNanoseconds: settings.timeoutNanoseconds)
            if now - lastPublish >= 200_000_000 || publishRequested.exchange(false, ordering: .relaxed) {
                publish()
                lastPublish = now
            }
            if !draining && stopRequested.load(ordering: .relaxed) {
                // Stop taking queries; answers to those in flight still arrive on the upstream sockets.
                for listener in listeners {
                    epoll.remove(listener.fd)
                    listener.close()
                }
                listeners = []
                draining = true
            }
            if draining && inFlight.isEmpty { break }
        }
        pool4.closeAll()
        pool6?.closeAll()
        replySockets.closeAll()
        publish()
    }

    private func publish() {
        var snapshot = counters
        snapshot.replyFailures += clientSender.dropped
        snapshot.upstreamSendFailures += upstreamSender.dropped
        published.withLock { $0 = snapshot }
    }

    @inline(__always)
    private func handle(token: UInt64) {
        if token == Worker.wakeToken {
            wakeup.drain()
        } else if token & Worker.upstreamTokenFlag != 0 {
            receiveAnswers(fd: Int32(bitPattern: UInt32(truncatingIfNeeded: token)))
        } else if Int(token) < listeners.count {
            receiveQueries(fd: listeners[Int(token)].fd)
        }
    }

    // MARK: Queries from clients

    private func receiveQueries(fd: Int32) {
        for _ in 0..<Worker.roundsPerEvent {
            let n: Int
            do { n = try queryReceiver.receive(from: fd) } catch {
                warn("recvmmsg on a listener failed: \(error)")
                return
            }
            if n == 0 { return }
            let now = SystemInfo.monotonicNanoseconds()
            batchFD4 = pool4.pick(random)
            batchFD6 = pool6?.pick(random) ?? -1
            for i in 0..<n { handleQuery(i, now: now) }
            upstreamSender.flush()
            clientSender.flush()
            if n < queryReceiver.capacity { return }
        }
    }

    @inline(__always)
    private func handleQuery(_ i: Int, now: UInt64) {
        counters.received += 1
        if queryReceiver.isTruncated(i) {
            counters.droppedOversize += 1
            return
        }
        guard let client = queryReceiver.source(i),
              let destination = queryReceiver.controlMessages(i).originalDestination
        else {
            counters.droppedNoDestination += 1
            return
        }
        let payload = queryReceiver.payload(i)
        switch QueryParser.classify(UnsafeRawBufferPointer(payload)) {
        case .drop(.tooShort):
            counters.droppedShort += 1
        case .drop(.isResponse):
            counters.droppedResponses += 1
        case .formatError:
            counters.formatErrors += 1
            let length = ResponseBuilder.formatError(in: payload)
            reply(UnsafeRawBufferPointer(rebasing: payload[0..<length]), from: destination, to: client)
        case .query(let query):
            if listenerEndpoints.contains(destination) {
                counters.refusedLoops += 1
                let length = ResponseBuilder.answer(rcode: .refused, in: queryReceiver.slot(i), questionEnd: query.questionEnd, withOPT: query.hasEDNS)
                reply(UnsafeRawBufferPointer(rebasing: queryReceiver.slot(i)[0..<length]), from: destination, to: client)
                return
            }
            forward(payload, query: query, client: client, destination: destination, now: now, slot: i)
        }
    }

    @inline(__always)
    private func forward(_ payload: UnsafeMutableRawBufferPointer, query: ParsedQuery, client: Endpoint,
                         destination: Endpoint, now: UInt64, slot: Int) {
        let server = settings.mode == .original ? destination : settings.servers[0]
        guard let index = inFlight.allocate(random: random) else {
            counters.droppedOverload += 1
            return
        }
        let stored = inFlight.buffer(index)
        stored.baseAddress!.copyMemory(from: payload.baseAddress!, byteCount: payload.count)
        let upstreamID = inFlight[index].upstreamID
        inFlight[index].clientID = DNSHeader.id(payload.baseAddress!)
        inFlight[index].client = client
        inFlight[index].originalDestination = destination
        inFlight[index].server = server
        inFlight[index].serverIndex = 0
        inFlight[index].queryLength = payload.count
        inFlight[index].questionEnd = query.questionEnd
        inFlight[index].hasEDNS = query.hasEDNS
        DNSHeader.setID(stored.baseAddress!, upstreamID)
        guard send(index, to: server, now: now) else { return }
        counters.forwarded += 1
    }

    /// Sends entry `index` to `server` from this batch's socket of the right family and schedules
    /// its timeout. Without a socket of that family the client gets SERVFAIL at once.
    @inline(__always)
    private func send(_ index: Int, to server: Endpoint, now: UInt64) -> Bool {
        let fd = server.address.isIPv6 ? batchFD6 : batchFD4
        guard fd >= 0 else {
            failQuery(index)
            return false
        }
        inFlight[index].upstreamFD = fd
        inFlight.schedule(index, deadline: now + settings.timeoutNanoseconds)
        upstreamSender.enqueue(fd: fd, bytes: inFlight.query(index), to: server)
        return true
    }

    // MARK: Answers from upstream

    private func receiveAnswers(fd: Int32) {
        for _ in 0..<Worker.roundsPerEvent {
            let n: Int
            do { n = try answerReceiver.receive(from: fd) } catch {
                // ICMP errors and the like on an unconnected socket: nothing to do but go on.
                return
            }
            if n == 0 { return }
            for i in 0..<n { handleAnswer(i, fd: fd) }
            clientSender.flush()
            if n < answerReceiver.capacity { return }
        }
    }

    /// Accepts an answer only when its ID, source address and port, the socket it arrived on and
    /// its question all match a query in flight (RFC 5452); anything else is dropped and counted.
    @inline(__always)
    private func handleAnswer(_ i: Int, fd: Int32) {
        let payload = answerReceiver.payload(i)
        guard payload.count >= DNSHeader.size, let base = payload.baseAddress,
              DNSHeader.isResponse(base),
              let index = inFlight.lookup(id: DNSHeader.id(base)),
              inFlight[index].upstreamFD == fd,
              let source = answerReceiver.source(i), source == inFlight[index].server,
              Question.matches(query: inFlight.query(index), end: inFlight[index].questionEnd, response: UnsafeRawBufferPointer(payload))
        else {
            counters.upstreamMismatches += 1
            return
        }
        var length = payload.count
        if answerReceiver.isTruncated(i) {
            // Larger than any UDP answer we keep: pass on header and question with TC=1, so the
            // client asks again over TCP.
            guard let cut = ResponseBuilder.truncate(in: answerReceiver.slot(i)) else {
                counters.upstreamMismatches += 1
                return
            }
            length = cut
            counters.truncatedAnswers += 1
        }
        // The client gets its own ID and the exact bytes of its question back (its letter case).
        let end = inFlight[index].questionEnd
        (base + DNSHeader.size).copyMemory(from: inFlight.query(index).baseAddress! + DNSHeader.size, byteCount: end - DNSHeader.size)
        DNSHeader.setID(base, inFlight[index].clientID)
        reply(UnsafeRawBufferPointer(rebasing: payload[0..<length]), from: inFlight[index].originalDestination, to: inFlight[index].client)
        counters.answered += 1
        inFlight.release(index)
    }

    // MARK: Timeouts

    /// Retries timed-out queries on the next configured server, or answers SERVFAIL.
    private func expire(now: UInt64) {
        guard let first = inFlight.earliest, inFlight[first].deadline <= now else { return }
        batchFD4 = pool4.pick(random)
        batchFD6 = pool6?.pick(random) ?? -1
        while let index = inFlight.earliest, inFlight[index].deadline <= now {
            counters.upstreamTimeouts += 1
            let next = inFlight[index].serverIndex + 1
            if settings.mode == .servers && next < settings.servers.count {
                counters.upstreamRetries += 1
                inFlight[index].serverIndex = next
                inFlight[index].server = settings.servers[next]
                inFlight.assignID(index, random: random)
                DNSHeader.setID(inFlight.buffer(index).baseAddress!, inFlight[index].upstreamID)
                _ = send(index, to: settings.servers[next], now: now)
            } else {
                failQuery(index)
            }
        }
        upstreamSender.flush()
        clientSender.flush()
    }

    /// Answers SERVFAIL (built in place in the stored query) and frees the entry.
    private func failQuery(_ index: Int) {
        counters.serverFailures += 1
        let buffer = inFlight.buffer(index)
        DNSHeader.setID(buffer.baseAddress!, inFlight[index].clientID)
        let length = ResponseBuilder.answer(rcode: .serverFailure, in: buffer, questionEnd: inFlight[index].questionEnd,
                                            withOPT: inFlight[index].hasEDNS)
        reply(UnsafeRawBufferPointer(rebasing: buffer[0..<length]), from: inFlight[index].originalDestination, to: inFlight[index].client)
        inFlight.release(index)
    }

    // MARK: Replies

    @inline(__always)
    private func reply(_ bytes: UnsafeRawBufferPointer, from origin: Endpoint, to client: Endpoint) {
        guard let fd = replySockets.descriptor(for: origin) else {
            counters.replyFailures += 1
            if let why = replySockets.lastError { warn(why) }
            return
        }
        clientSender.enqueue(fd: fd, bytes: bytes, to: client)
    }

    /// At most one warning every 10 s per worker: a flood of bad input must not become a flood of logs.
    private func warn(_ message: @autoclosure () -> String) {
        let now = SystemInfo.monotonicNanoseconds()
        guard now - lastWarning > 10_000_000_000 || lastWarning == 0 else { return }
        lastWarning = now
        logger.warning("worker \(settings.index): \(message())")
    }
}

extension RandomSource: RandomIDs {
    @inline(__always)
    func nextID() -> UInt16 { next16() }
}
