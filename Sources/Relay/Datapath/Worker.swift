import DNS
import Glibc
import LinuxNet
import Logging
import RelayCore
import Rules
import Zones
import Synchronization

/// One datapath thread: its own listeners (SO_REUSEPORT), upstream sockets and connections,
/// reply sockets, in-flight table and counters. Nothing on its UDP path is shared with another
/// worker, nothing is allocated per datagram (ldns' own parse allocations aside), and no Task is
/// involved: a plain epoll loop around recvmmsg/sendmmsg batches. TCP (client connections and
/// upstream connections) lives in Worker+ClientTCP.swift and Worker+UpstreamTCP.swift.
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
        var tcp: Configuration.TCP
        /// Shared by all workers: TCP connections in total and per client.
        var limits: ConnectionLimits
        var blockWith: Configuration.BlockResponse = .nxdomain
        /// TTL of the answers the relay makes up.
        var answerTTL: UInt32 = 10
        /// Which lists apply to which clients (`filters.clients`).
        var clientPolicy = ClientPolicy()
        var cache = AnswerCache.Settings()
        /// QUIC flows (Relay/QUIC): sniffing, blocking, timeouts; this worker's share of the cap.
        var quic = Configuration.QUIC()
        var maxQUICFlows = 10_000
        /// Descriptor caps (DescriptorBudget): reply sockets, upstream TCP connections, and
        /// replaced upstream UDP sockets per family still waiting for answers.
        var replySockets = 1024
        var maxUpstreamConnections = 256
        var retiringSockets = 256
    }

    static let batchSize = 64
    static let maxQueryLength = 4096
    /// Upstream answers up to 64 KiB are kept whole (memory is only touched as large answers come).
    static let maxAnswerLength = 65535
    /// recvmmsg rounds per readiness event before other sockets get a turn.
    static let roundsPerEvent = 16

    /// Epoll token kinds (top byte); the low bits carry an index or a descriptor.
    enum Token {
        static let udpListener: UInt64 = 0
        static let wake: UInt64 = 1 << 56
        static let tcpListener: UInt64 = 2 << 56
        static let clientConnection: UInt64 = 3 << 56
        static let upstreamConnection: UInt64 = 4 << 56
        static let upstreamSocket: UInt64 = 5 << 56
        static let quicListener: UInt64 = 6 << 56
        /// A QUIC flow's upstream socket: generation in bits 24–55, slot in bits 0–23.
        static let quicFlow: UInt64 = 7 << 56
        static let kindMask: UInt64 = 0xff << 56
    }

    let settings: Settings
    let logger: Logger
    let epoll: Epoll
    private let wakeup: EventNotifier
    private var udpListeners: [Socket]
    var tcpListeners: [Socket]
    /// The listeners' own addresses: a query whose original destination is one of them was sent
    /// to the relay directly, and forwarding it "to where it was going" would loop.
    let listenerEndpoints: [Endpoint]
    private let queryReceiver = BatchReceiver(capacity: Worker.batchSize, messageSize: Worker.maxQueryLength)
    private let answerReceiver = BatchReceiver(capacity: Worker.batchSize, messageSize: Worker.maxAnswerLength)
    let clientSender = BatchSender(capacity: Worker.batchSize * 2)
    private let upstreamSender = BatchSender(capacity: Worker.batchSize * 2)
    let inFlight: InFlightTable
    let replySockets: ReplySockets
    let random = RandomSource()
    private var pool4: UpstreamSocketPool!
    private var pool6: UpstreamSocketPool?
    /// The upstream socket each family uses for the current batch.
    private var batchFD4: Int32 = -1
    private var batchFD6: Int32 = -1
    var counters = Counters()
    private var lastWarning: UInt64 = 0

    // TCP state (see the TCP extensions).
    var clients = Slots<ClientConnection>()
    var nextGeneration: UInt32 = 1
    var upstreamConnections = Slots<UpstreamConnection>()
    var connectionsByServer: [Endpoint: [Int]] = [:]
    var lastSweep: UInt64 = 0
    /// Non-zero while the TCP listeners rest after EMFILE: when they are watched again.
    var acceptPausedUntil: UInt64 = 0

    // QUIC flows (see Relay/QUIC/Worker+QUIC.swift).
    var quicListeners: [Socket]
    var quicFlows = Slots<QUICFlow>()
    var quicIndex: [QUICFlowKey: Int] = [:]
    var quicGeneration: UInt32 = 0
    /// Client datagrams (with their original destinations), and datagrams from servers.
    let quicReceiver = BatchReceiver(capacity: Worker.batchSize, messageSize: Worker.maxQUICDatagram)
    let quicUpstreamReceiver = BatchReceiver(capacity: Worker.batchSize, messageSize: Worker.maxQUICDatagram)
    /// Client datagrams go upstream in GSO runs (one sendmsg per run of full-sized datagrams).
    let quicSegments = SegmentedSender()
    /// Server datagrams go to the client the same way, from the reply socket.
    let quicDownSegments = SegmentedSender()
    /// Larger datagrams are dropped (and counted): QUIC keeps to the path MTU, 1,200–1,500 bytes.
    static let maxQUICDatagram = 4096
    /// Receive buffer of each QUIC flow's upstream socket (QUIC stacks ask for several MB).
    static let quicFlowReceiveBuffer: Int32 = 2 << 20

    // Filtering (see Worker+Filtering.swift).
    /// The rules in force; shared read-only with the other workers, replaced whole on reload.
    var rules: RuleSet
    let ruleMailbox = Mutex<RuleSet?>(nil)
    /// The local zones in force; like the rules, shared read-only and replaced whole.
    var zones: LocalZones
    let zoneMailbox = Mutex<LocalZones?>(nil)
    let rulesChanged = Atomic<Bool>(false)
    /// Where a query's name is spelled out for the rules (256 bytes, allocated once).
    let nameScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
    /// Where answers to TCP queries are built (a frame must not grow in place).
    let answerScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: Worker.maxQueryLength + 64, alignment: 8)

    // The query log (see Worker+QueryLog.swift): this worker's ring, or nil when the log is off.
    var queryLog: QueryLogRing?
    /// What the last `filter` call decided: its rule (index, or .max) and, for answers it made,
    /// whether they were blocks or rewrites.
    var decidedRule: UInt32 = .max
    var decidedAction: QueryLogRecord.Action = .allowed

    // The answer cache (see Worker+Cache.swift).
    let cache: AnswerCache
    /// Where cached answers are written out (one slot's worth).
    let cacheScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: AnswerCache.slotSize + 64, alignment: 8)
    /// The worker's clock for TTLs, in whole seconds, refreshed every loop turn.
    var nowSeconds: UInt32 = 0

    /// A copy of the counters, refreshed a few times a second, for the service to read.
    let published = Mutex(Counters())
    private let stopRequested = Atomic<Bool>(false)
    private let publishRequested = Atomic<Bool>(false)

    init(settings: Settings, udpListeners: [Socket], tcpListeners: [Socket], quicListeners: [Socket] = [], rules: RuleSet,
         zones: LocalZones = .empty, queryLog: QueryLogRing? = nil, logger: Logger) throws {
        self.quicListeners = quicListeners
        self.settings = settings
        self.queryLog = queryLog
        self.rules = rules
        self.zones = zones
        self.udpListeners = udpListeners
        self.tcpListeners = tcpListeners
        self.logger = logger
        listenerEndpoints = udpListeners.compactMap { try? $0.localEndpoint() }
        epoll = try Epoll(capacity: 64)
        wakeup = try EventNotifier()
        inFlight = InFlightTable(capacity: settings.maxInFlight, maxQueryLength: Worker.maxQueryLength)
        replySockets = ReplySockets(limit: settings.replySockets)
        cache = AnswerCache(settings: settings.cache)
        nowSeconds = UInt32(SystemInfo.monotonicNanoseconds() / 1_000_000_000)
        try epoll.add(wakeup.fd, token: Token.wake)
        for (i, listener) in udpListeners.enumerated() { try epoll.add(listener.fd, token: Token.udpListener | UInt64(i)) }
        for (i, listener) in tcpListeners.enumerated() { try epoll.add(listener.fd, token: Token.tcpListener | UInt64(i)) }
        for (i, listener) in quicListeners.enumerated() { try epoll.add(listener.fd, token: Token.quicListener | UInt64(i)) }
        let now = SystemInfo.monotonicNanoseconds()
        let token: (Int32) -> UInt64 = { Token.upstreamSocket | UInt64(UInt32(bitPattern: $0)) }
        pool4 = try UpstreamSocketPool(family: AF_INET, count: settings.upstreamSockets, bypassMark: settings.bypassMark,
                                       epoll: epoll, now: now, maxRetiring: settings.retiringSockets, token: token)
        // IPv6 upstreams are optional: a host without IPv6 still relays IPv4.
        pool6 = try? UpstreamSocketPool(family: AF_INET6, count: settings.upstreamSockets, bypassMark: settings.bypassMark,
                                        epoll: epoll, now: now, maxRetiring: settings.retiringSockets, token: token)
        pickBatchSockets()
    }

    deinit {
        nameScratch.deallocate()
        answerScratch.deallocate()
        cacheScratch.deallocate()
    }

    func wakeUp() { wakeup.notify() }

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
            var timeout: Int32 = 100
            if let first = inFlight.earliest {
                let now = SystemInfo.monotonicNanoseconds()
                let deadline = inFlight[first].deadline
                timeout = deadline <= now ? 0 : Int32(min(100, (deadline - now + 999_999) / 1_000_000))
            }
            do {
                _ = try epoll.wait(timeoutMilliseconds: timeout) { token, events in handle(token: token, events: events) }
            } catch {
                warn("epoll_wait failed: \(error)")
            }
            takeNewRules()
            // Every sender was flushed by the handlers: evicted reply sockets may close now.
            replySockets.reap()
            let now = SystemInfo.monotonicNanoseconds()
            nowSeconds = UInt32(now / 1_000_000_000)
            expire(now: now)
            pool4.maintain(now: now, busy: busyUpstreamSockets)
            pool6?.maintain(now: now, busy: busyUpstreamSockets)
            if !draining { resumeAccepting(now: now) }
            if now - lastSweep >= 100_000_000 {
                sweepConnections(now: now)
                sweepQUIC(now: now)
                lastSweep = now
            }
            if now - lastPublish >= 200_000_000 || publishRequested.exchange(false, ordering: .relaxed) {
                publish()
                lastPublish = now
            }
            if !draining && stopRequested.load(ordering: .relaxed) {
                // Stop taking queries; answers to those in flight still arrive upstream.
                for listener in udpListeners + tcpListeners + quicListeners {
                    epoll.remove(listener.fd)
                    listener.close()
                }
                udpListeners = []
                tcpListeners = []
                quicListeners = []
                draining = true
            }
            if draining && inFlight.isEmpty { break }
        }
        closeAllConnections()
        closeAllQUIC()
        pool4.closeAll()
        pool6?.closeAll()
        replySockets.closeAll()
        publish()
    }

    /// The upstream sockets that queries in flight over UDP went out on.
    private func busyUpstreamSockets() -> Set<Int32> {
        var busy = Set<Int32>()
        inFlight.forEachScheduled { index in
            if inFlight[index].upstreamFD >= 0 { busy.insert(inFlight[index].upstreamFD) }
        }
        return busy
    }

    /// After a batch of upstream queries went out: each socket that carried some is replaced by
    /// one on a new random port (UpstreamSocketPool).
    @inline(__always)
    private func upstreamBatchSent(now: UInt64) {
        upstreamSender.flush()
        pool4.batchSent(now: now, timeoutNanoseconds: settings.timeoutNanoseconds)
        pool6?.batchSent(now: now, timeoutNanoseconds: settings.timeoutNanoseconds)
        // The batch's sockets may have been replaced: what is sent next (a prefetch from a TCP
        // query, a retry) must go out on a socket of the pool, never on a replaced one.
        pickBatchSockets()
    }

    private func publish() {
        var snapshot = counters
        snapshot.replyFailures += clientSender.dropped
        snapshot.upstreamSendFailures += upstreamSender.dropped
        snapshot.cacheHits = cache.hits
        snapshot.cacheMisses = cache.misses
        snapshot.cacheInserted = cache.inserted
        snapshot.cacheEvicted = cache.evicted
        snapshot.cacheStale = cache.staleServed
        snapshot.cacheEntries = cache.count
        snapshot.quicOpen = quicFlows.count
        snapshot.upstreamPorts = pool4.opened + (pool6?.opened ?? 0)
        snapshot.upstreamPortsReused = pool4.reused + (pool6?.reused ?? 0)
        // Client datagrams the upstream send buffer refused (EAGAIN) or the kernel rejected.
        snapshot.quicDropped += quicSegments.dropped + quicDownSegments.dropped
        published.withLock { $0 = snapshot }
    }

    @inline(__always)
    private func handle(token: UInt64, events: Epoll.Events) {
        let index = Int(token & ~Token.kindMask)
        switch token & Token.kindMask {
        case Token.udpListener where index < udpListeners.count:
            receiveQueries(fd: udpListeners[index].fd)
        case Token.upstreamSocket:
            receiveAnswers(fd: Int32(bitPattern: UInt32(truncatingIfNeeded: index)))
        case Token.wake:
            wakeup.drain()
        case Token.tcpListener where index < tcpListeners.count:
            acceptClients(tcpListeners[index])
        case Token.clientConnection:
            serviceClient(index, events: events)
        case Token.upstreamConnection:
            serviceUpstream(index, events: events)
        case Token.quicFlow:
            receiveQUICUpstream(token: token)
        case Token.quicListener where index < quicListeners.count:
            receiveQUIC(fd: quicListeners[index].fd)
        default:
            break
        }
    }

    // MARK: Queries from UDP clients

    private func receiveQueries(fd: Int32) {
        for _ in 0..<Worker.roundsPerEvent {
            let n: Int
            do { n = try queryReceiver.receive(from: fd) } catch {
                warn("recvmmsg on a listener failed: \(error)")
                return
            }
            if n == 0 { return }
            let now = SystemInfo.monotonicNanoseconds()
            pickBatchSockets()
            for i in 0..<n { handleQuery(i, now: now) }
            upstreamBatchSent(now: now)
            clientSender.flush()
            if n < queryReceiver.capacity { return }
        }
    }

    @inline(__always)
    private func pickBatchSockets() {
        batchFD4 = pool4.pick(random)
        batchFD6 = pool6?.pick(random) ?? -1
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
        case .notImplemented:
            counters.notImplemented += 1
            let length = ResponseBuilder.headerOnly(rcode: .notImplemented, in: payload)
            reply(UnsafeRawBufferPointer(rebasing: payload[0..<length]), from: destination, to: client)
            record(UnsafeRawBufferPointer(rebasing: payload[0..<length]), proto: .udp, client: client, server: destination, action: .error, receivedAt: now)
        case .formatError:
            counters.formatErrors += 1
            let length = ResponseBuilder.formatError(in: payload)
            reply(UnsafeRawBufferPointer(rebasing: payload[0..<length]), from: destination, to: client)
            record(UnsafeRawBufferPointer(rebasing: payload[0..<length]), proto: .udp, client: client, server: destination, action: .error, receivedAt: now)
        case .query(let query):
            let slot = queryReceiver.slot(i)
            func answer(_ length: Int, _ action: QueryLogRecord.Action, rule: RuleOrigin = Worker.noRule) {
                let bytes = UnsafeRawBufferPointer(rebasing: slot[0..<length])
                reply(bytes, from: destination, to: client)
                record(bytes, proto: .udp, client: client, server: destination, action: action, rule: rule, receivedAt: now)
            }
            if listenerEndpoints.contains(destination) {
                counters.refusedLoops += 1
                answer(ResponseBuilder.answer(rcode: .refused, in: slot, questionEnd: query.questionEnd, withOPT: query.hasEDNS), .error)
                return
            }
            // Local zones first (the LAN's own names are its own data), then the rules, the cache,
            // the upstream (docs/DESIGN.md).
            if let length = localAnswer(slot, queryLength: payload.count, query: query, limit: query.udpPayloadSize) {
                answer(length, .local)
                return
            }
            let index: Int?
            switch filter(slot, queryLength: payload.count, query: query, client: client.address, limit: query.udpPayloadSize) {
            case .answered(let length):
                answer(length, decidedAction, rule: decidedOrigin)
                return
            case .forward(let server):
                if let length = cachedAnswer(UnsafeRawBufferPointer(payload), query: query, client: client, destination: destination,
                                             server: server, limit: query.udpPayloadSize, now: now) {
                    counters.answered += 1
                    // Into the query's own slot: the sender keeps a pointer until it flushes.
                    slot.baseAddress!.copyMemory(from: cacheScratch.baseAddress!, byteCount: length)
                    answer(length, .cached, rule: decidedOrigin)
                    return
                }
                index = admit(UnsafeRawBufferPointer(payload), query: query, client: client, destination: destination, server: server)
            case .alias(let target):
                if let length = localAliasAnswer(slot, query: query, target: target, limit: query.udpPayloadSize) {
                    answer(length, .rewritten, rule: decidedOrigin)
                    return
                }
                index = admitAlias(UnsafeRawBufferPointer(payload), query: query, target: target, client: client, destination: destination)
            }
            guard let index else {
                if queryLog != nil {
                    // Dropped for overload: logged with the question and no answer.
                    let length = ResponseBuilder.answer(rcode: .serverFailure, in: slot, questionEnd: query.questionEnd, withOPT: false)
                    record(UnsafeRawBufferPointer(rebasing: slot[0..<length]), proto: .udp, client: client, server: destination, action: .dropped, receivedAt: now)
                }
                return
            }
            inFlight[index].receivedAt = now
            inFlight[index].clientPayloadSize = query.udpPayloadSize
            let server = inFlight[index].server
            if sendUDP(index, to: server, now: now) { counters.forwarded += 1 }
        }
    }

    /// Takes a free in-flight entry for a query: copies it, records who asked whom, and gives it
    /// a fresh random ID. nil (counted) when the table is full.
    @inline(__always)
    func admit(_ payload: UnsafeRawBufferPointer, query: ParsedQuery, client: Endpoint, destination: Endpoint, server: Endpoint? = nil) -> Int? {
        // Both paths refuse longer queries before this; an entry's slot must never be overrun.
        guard payload.count <= inFlight.maxQueryLength else {
            counters.droppedOversize += 1
            return nil
        }
        guard let index = inFlight.allocate(random: random) else {
            counters.droppedOverload += 1
            return nil
        }
        let stored = inFlight.buffer(index)
        stored.baseAddress!.copyMemory(from: payload.baseAddress!, byteCount: payload.count)
        inFlight[index].clientID = DNSHeader.id(payload.baseAddress!)
        inFlight[index].client = client
        inFlight[index].originalDestination = destination
        if let server {
            // A server=/d/ upstream: no fallback to the configured servers.
            counters.forwardedByRule += 1
            inFlight[index].server = server
            inFlight[index].serverIndex = Int(Int32.max)
        } else {
            inFlight[index].server = settings.mode == .original ? destination : settings.servers[0]
            inFlight[index].serverIndex = 0
        }
        inFlight[index].aliasQuestionEnd = 0
        inFlight[index].cacheFlags = query.cacheFlags
        inFlight[index].cacheServer = cacheServer(rule: server, destination: destination)
        inFlight[index].cacheable = true
        inFlight[index].prefetch = false
        inFlight[index].rule = decidedOrigin
        inFlight[index].receivedAt = queryLog != nil ? SystemInfo.monotonicNanoseconds() : 0
        inFlight[index].queryLength = payload.count
        inFlight[index].questionEnd = query.questionEnd
        inFlight[index].hasEDNS = query.hasEDNS
        inFlight[index].clientPayloadSize = 65535
        inFlight[index].tcpClient = -1
        inFlight[index].upstreamConnection = -1
        inFlight[index].upstreamFD = -1
        inFlight[index].retriedOverTCP = false
        DNSHeader.setID(stored.baseAddress!, inFlight[index].upstreamID)
        return index
    }

    /// Admits a query whose name a `$dnsrewrite` rule made an alias of `target`: the entry keeps
    /// the client's header and question aside and carries the query for the target instead.
    func admitAlias(_ payload: UnsafeRawBufferPointer, query: ParsedQuery, target: String, client: Endpoint, destination: Endpoint) -> Int? {
        guard let index = admit(payload, query: query, client: client, destination: destination) else { return nil }
        let buffer = inFlight.buffer(index)
        let aside = InFlightTable.aliasOffset
        // Neither guard can fail for a parsed query (question ≤ 271 bytes, target ≤ 253), but
        // an entry that cannot be built is freed rather than sent half-made.
        guard query.questionEnd <= buffer.count - aside else {
            inFlight.release(index)
            return nil
        }
        (buffer.baseAddress! + aside).copyMemory(from: buffer.baseAddress!, byteCount: query.questionEnd)
        guard let built = AliasAnswer.query(target: target, type: query.type,
                                            header: UnsafeRawBufferPointer(rebasing: buffer[aside..<(aside + DNSHeader.size)]),
                                            withOPT: query.hasEDNS, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<aside])) else {
            inFlight.release(index)
            return nil
        }
        inFlight[index].queryLength = built.length
        inFlight[index].questionEnd = built.questionEnd
        inFlight[index].aliasQuestionEnd = query.questionEnd
        inFlight[index].cacheable = false
        counters.aliasesResolved += 1
        return index
    }

    /// Sends a prefetch over UDP (the upstream sender is flushed with the batch).
    func sendPrefetch(_ index: Int, now: UInt64) {
        // Sent at once: a prefetch may come from a TCP query, outside any UDP batch.
        if sendUDP(index, to: inFlight[index].server, now: now) { upstreamBatchSent(now: now) }
    }

    /// Sends entry `index` to `server` over UDP from this batch's socket of the right family and
    /// schedules its timeout. Without a socket of that family the client gets SERVFAIL at once.
    @inline(__always)
    private func sendUDP(_ index: Int, to server: Endpoint, now: UInt64) -> Bool {
        let fd = server.address.isIPv6 ? batchFD6 : batchFD4
        guard fd >= 0 else {
            failQuery(index)
            return false
        }
        if server.address.isIPv6 { pool6?.used() } else { pool4.used() }
        inFlight[index].upstreamFD = fd
        inFlight[index].upstreamConnection = -1
        inFlight.schedule(index, deadline: now + settings.timeoutNanoseconds)
        upstreamSender.enqueue(fd: fd, bytes: inFlight.query(index), to: server)
        return true
    }

    // MARK: Answers from upstream over UDP

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
              inFlight[index].upstreamFD == fd, inFlight[index].upstreamConnection < 0,
              let source = answerReceiver.source(i), source == inFlight[index].server,
              Question.matches(query: inFlight.query(index), end: inFlight[index].questionEnd, response: UnsafeRawBufferPointer(payload))
        else {
            counters.upstreamMismatches += 1
            return
        }
        if DNSHeader.flags(base) & DNSHeader.truncatedFlag != 0 || answerReceiver.isTruncated(i) {
            // Truncated upstream: ask the same server again over TCP, once (RFC 7766 §5).
            if !inFlight[index].retriedOverTCP {
                counters.tcpRetries += 1
                inFlight[index].retriedOverTCP = true
                inFlight.assignID(index, random: random)
                DNSHeader.setID(inFlight.buffer(index).baseAddress!, inFlight[index].upstreamID)
                sendTCP(index, to: inFlight[index].server, now: SystemInfo.monotonicNanoseconds())
                return
            }
            counters.truncatedAnswers += 1
        }
        deliver(index, answer: answerReceiver.slot(i), length: payload.count)
    }

    /// Hands an accepted answer to the client that asked, from the address it asked, with its own
    /// ID and question bytes; a UDP client gets TC=1 when the answer exceeds its buffer. Frees the
    /// entry. `answer` is the writable buffer holding the answer in its first `length` bytes.
    @inline(__always)
    func deliver(_ index: Int, answer: UnsafeMutableRawBufferPointer, length: Int) {
        // A malformed answer is not passed on or cached (the client gets SERVFAIL, or a stale
        // answer); TTLs are clamped in place so the first answer and the cached copy agree.
        guard AnswerCheck.check(UnsafeMutableRawBufferPointer(rebasing: answer[0..<length]), questionEnd: inFlight[index].questionEnd,
                                maxTTL: settings.cache.maxTTL) else {
            counters.upstreamMalformed += 1
            failQuery(index)
            return
        }
        if inFlight[index].aliasQuestionEnd > 0 {
            deliverAlias(index, answer: answer, length: length)
            return
        }
        let base = answer.baseAddress!
        if DNSHeader.rcode(base) == .serverFailure, let stale = staleAnswer(index) {
            // RFC 8767: an upstream that fails is an upstream that does not answer.
            if inFlight[index].prefetch { inFlight.release(index); return }
            sendStale(index, length: stale)
            return
        }
        remember(index, answer: UnsafeRawBufferPointer(rebasing: answer[0..<length]))
        if inFlight[index].prefetch {
            inFlight.release(index)
            return
        }
        let end = inFlight[index].questionEnd
        (base + DNSHeader.size).copyMemory(from: inFlight.query(index).baseAddress! + DNSHeader.size, byteCount: end - DNSHeader.size)
        send(index, answer: answer, length: length)
    }

    /// The answer for the target of an alias becomes the client's: its question, the CNAME, the
    /// target's records. An answer that does not parse becomes SERVFAIL.
    private func deliverAlias(_ index: Int, answer: UnsafeMutableRawBufferPointer, length answerLength: Int) {
        let buffer = inFlight.buffer(index)
        let aside = UnsafeRawBufferPointer(rebasing: buffer[InFlightTable.aliasOffset..<(InFlightTable.aliasOffset + inFlight[index].aliasQuestionEnd)])
        guard let length = DomainName.fromWire(inFlight.query(index), into: nameScratch),
              let composed = AliasAnswer.compose(original: aside, target: String(decoding: nameScratch[0..<length], as: UTF8.self),
                                                 ttl: settings.answerTTL, upstream: UnsafeRawBufferPointer(rebasing: answer[0..<answerLength]),
                                                 withOPT: inFlight[index].hasEDNS)
        else {
            failQuery(index)
            return
        }
        if inFlight[index].tcpClient >= 0 {
            // A TCP client's answer is copied into its connection's output at once.
            var bytes = composed
            bytes.withUnsafeMutableBytes { send(index, answer: $0, length: $0.count) }
            return
        }
        // A UDP client's answer must outlive this call (the sender keeps a pointer until it
        // flushes): the answer's own buffer, or the entry's when that is too small (a TCP frame).
        let target = composed.count <= answer.count ? answer : inFlight.buffer(index)
        let copied = min(composed.count, target.count)
        composed.withUnsafeBytes { target.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: copied) }
        var size = copied
        if copied < composed.count {
            // Larger than any UDP client takes anyway: TC=1, and the client asks over TCP.
            size = ResponseBuilder.truncate(in: UnsafeMutableRawBufferPointer(rebasing: target[0..<copied]),
                                            withOPT: inFlight[index].hasEDNS) ?? copied
        }
        send(index, answer: target, length: size)
    }

    /// Sends a stale answer from `cacheScratch`, copied into the entry's own buffer first (the UDP
    /// sender keeps a pointer until it flushes, and `cacheScratch` is written again at once).
    private func sendStale(_ index: Int, length: Int) {
        let buffer = inFlight.buffer(index)
        buffer.baseAddress!.copyMemory(from: cacheScratch.baseAddress!, byteCount: length)
        send(index, answer: buffer, length: length, action: .cached)
    }

    /// Sends a finished answer (the client's ID goes in here) and frees the entry.
    private func send(_ index: Int, answer: UnsafeMutableRawBufferPointer, length: Int, action: QueryLogRecord.Action? = nil) {
        let base = answer.baseAddress!
        DNSHeader.setID(base, inFlight[index].clientID)
        counters.answered += 1
        if queryLog != nil {
            let logged = action ?? (inFlight[index].aliasQuestionEnd > 0 || !inFlight[index].cacheable ? .rewritten : .allowed)
            record(UnsafeRawBufferPointer(rebasing: answer[0..<length]), proto: inFlight[index].tcpClient >= 0 ? .tcp : .udp,
                   client: inFlight[index].client, server: inFlight[index].originalDestination, action: logged,
                   upstream: logged == .cached ? nil : inFlight[index].server, rule: inFlight[index].rule, receivedAt: inFlight[index].receivedAt)
        }
        if inFlight[index].tcpClient >= 0 {
            writeAnswer(UnsafeRawBufferPointer(start: base, count: length), toClient: Int(inFlight[index].tcpClient),
                        generation: inFlight[index].tcpGeneration)
        } else {
            var size = length
            if length > inFlight[index].clientPayloadSize {
                counters.truncatedForClients += 1
                size = ResponseBuilder.truncate(in: UnsafeMutableRawBufferPointer(rebasing: answer[0..<length]), withOPT: inFlight[index].hasEDNS) ?? length
            }
            reply(UnsafeRawBufferPointer(start: base, count: size), from: inFlight[index].originalDestination, to: inFlight[index].client)
        }
        inFlight.release(index)
    }

    // MARK: Timeouts

    /// Retries timed-out queries on the next configured server, or answers SERVFAIL.
    private func expire(now: UInt64) {
        guard let first = inFlight.earliest, inFlight[first].deadline <= now else { return }
        pickBatchSockets()
        while let index = inFlight.earliest, inFlight[index].deadline <= now {
            counters.upstreamTimeouts += 1
            let overTCP = inFlight[index].upstreamConnection >= 0
            if overTCP { forgetUpstreamWait(index) }
            let next = inFlight[index].serverIndex + 1
            if settings.mode == .servers && next < settings.servers.count {
                counters.upstreamRetries += 1
                inFlight[index].serverIndex = next
                inFlight[index].server = settings.servers[next]
                inFlight.assignID(index, random: random)
                DNSHeader.setID(inFlight.buffer(index).baseAddress!, inFlight[index].upstreamID)
                if overTCP {
                    sendTCP(index, to: settings.servers[next], now: now)
                } else {
                    _ = sendUDP(index, to: settings.servers[next], now: now)
                }
            } else {
                failQuery(index)
            }
        }
        upstreamBatchSent(now: now)
        clientSender.flush()
    }

    /// Answers SERVFAIL (built in place in the stored query) and frees the entry.
    func failQuery(_ index: Int) {
        if inFlight[index].prefetch {
            prefetchFailed(index)
            inFlight.release(index)
            return
        }
        if let length = staleAnswer(index) {
            sendStale(index, length: length)
            return
        }
        counters.serverFailures += 1
        let buffer = inFlight.buffer(index)
        if inFlight[index].aliasQuestionEnd > 0 {
            // The client asked for the alias, not the target: answer its own question.
            buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + InFlightTable.aliasOffset, byteCount: inFlight[index].aliasQuestionEnd)
            inFlight[index].questionEnd = inFlight[index].aliasQuestionEnd
            inFlight[index].aliasQuestionEnd = 0
        }
        DNSHeader.setID(buffer.baseAddress!, inFlight[index].clientID)
        let length = ResponseBuilder.answer(rcode: .serverFailure, in: buffer, questionEnd: inFlight[index].questionEnd,
                                            withOPT: inFlight[index].hasEDNS)
        if inFlight[index].tcpClient >= 0 {
            writeAnswer(UnsafeRawBufferPointer(rebasing: buffer[0..<length]), toClient: Int(inFlight[index].tcpClient),
                        generation: inFlight[index].tcpGeneration)
        } else {
            reply(UnsafeRawBufferPointer(rebasing: buffer[0..<length]), from: inFlight[index].originalDestination, to: inFlight[index].client)
        }
        record(UnsafeRawBufferPointer(rebasing: buffer[0..<length]), proto: inFlight[index].tcpClient >= 0 ? .tcp : .udp,
               client: inFlight[index].client, server: inFlight[index].originalDestination, action: .error,
               upstream: inFlight[index].server, rule: inFlight[index].rule, receivedAt: inFlight[index].receivedAt)
        inFlight.release(index)
    }

    // MARK: Replies to UDP clients

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
    func warn(_ message: @autoclosure () -> String) {
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
