import Configuration
import DNS
import Dnstap
import Glibc
import LinuxNet
import Logging
import Pipeline
import QueryLog
import RelayCore
import Rules
import Synchronization
import Zones

/// One datapath thread: a plain epoll loop (no Task) that owns its components, each holding its
/// own state — the UDP listeners with their batch receiver and senders, the in-flight table and
/// upstream socket pools (UDP queries and answers: Worker+Queries.swift, Worker+Upstream.swift),
/// client TCP (`ClientTCP`), upstream TCP (`UpstreamTCP`), QUIC flows (`QUICRelay`), and the
/// query pipeline that decides every DNS query (`QueryPipeline`). Nothing on its UDP path is
/// shared with another worker or allocated per datagram.
final class Worker {
    /// What a worker needs to know; fixed for its lifetime.
    struct Settings {
        var index: Int
        var timeoutNanoseconds: UInt64
        var upstreamSockets: Int
        var maxInFlight: Int
        var bypassMark: UInt32
        var tcp: Configuration.TCP
        /// Shared by all workers: TCP connections in total and per client.
        var limits: ConnectionLimits
        /// TTL of the answers the relay makes up.
        var answerTTL: UInt32 = 10
        var maxTTL: UInt32 = 86_400
        /// QUIC flows (Relay/QUIC): sniffing, blocking, timeouts; this worker's share of the cap.
        var quic = Configuration.QUIC()
        var maxQUICFlows = 10_000
        /// Descriptor caps (DescriptorBudget): reply sockets, upstream TCP connections, and
        /// replaced upstream UDP sockets per family still waiting for answers.
        var replySockets = 1024
        var maxUpstreamConnections = 256
        var retiringSockets = 256
        /// `upstream.client_identity`: sockets bound to clients' addresses this worker keeps
        /// (0 when no server has `source`), and whether a client's own ECS option is kept.
        var sourceSockets = 0
        var keepClientSubnet = false
        /// This host's addresses when its own traffic is captured (`intercept.local`): queries
        /// from them are logged with `"origin":"local"`. Empty otherwise.
        var localAddresses: [IPAddress] = []
        /// Whether answers are tallied for /metrics (by action, transport, rcode and latency:
        /// a clock read and a few adds per answer; nothing when the endpoint is off).
        var metrics = false
        /// `limits.client_qps`: the buckets all workers share, or nil; what a query over it gets.
        var rateLimiter: ClientRateLimiter?
        var rateLimitAction = Configuration.Limits.RateLimitAction.drop
    }

    static let batchSize = 64
    static let maxQueryLength = 4096
    /// Upstream answers up to 64 KiB are kept whole (memory is only touched as large answers come).
    static let maxAnswerLength = 65535
    /// recvmmsg rounds per readiness event before other sockets get a turn.
    static let roundsPerEvent = 16

    let settings: Settings
    let logger: Logger
    let epoll: Epoll
    private let wakeup: EventNotifier
    private(set) var udpListeners: [Socket]
    let queryReceiver = BatchReceiver(capacity: Worker.batchSize, messageSize: Worker.maxQueryLength)
    let answerReceiver = BatchReceiver(capacity: Worker.batchSize, messageSize: Worker.maxAnswerLength)
    /// Warms the rule table for each batch of queries before they are decided (`RulePrefetch`).
    let rulePrefetch = RulePrefetch(batch: Worker.batchSize)
    /// Warms the shared answer cache for each batch the same way (`CachePrefetch`).
    let cachePrefetch = CachePrefetch(batch: Worker.batchSize)
    let clientSender = BatchSender(capacity: Worker.batchSize * 2)
    let upstreamSender = BatchSender(capacity: Worker.batchSize * 2)
    let inFlight: InFlightTable
    let replySockets: ReplySockets
    let random = RandomSource()
    var pool4: UpstreamSocketPool!
    var pool6: UpstreamSocketPool?
    /// Sockets bound to clients' own addresses (`upstream.client_identity: source`), or nil.
    var sourceSockets: SourceSockets?
    /// The upstream socket each family uses for the current batch.
    var batchFD4: Int32 = -1
    var batchFD6: Int32 = -1
    var counters = Counters()
    /// For /metrics (`settings.metrics`): answers by kind and latency, and tries per upstream.
    var answerTally = AnswerTally()
    var upstreamTally: UpstreamTally
    /// Local answers of the UDP batch being handled, timed together when it is sent.
    var localAnswersInBatch = 0
    private var lastWarning: UInt64 = 0
    private var lastSweep: UInt64 = 0

    /// Decides every DNS query: loop guard, zones, rules, cache, upstream.
    var pipeline: QueryPipeline
    var tcp: ClientTCP!
    var upstreamTCP: UpstreamTCP!
    var quic: QUICRelay!
    /// The query log: this worker's ring, or nil when the log is off.
    let queryLog: QueryLogRing?
    /// dnstap: this worker's ring, or nil when dnstap is off.
    let dnstap: DnstapRing?
    /// Where TCP queries are answered (a frame must not grow in place).
    let answerScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: Worker.maxQueryLength + 64, alignment: 8)
    /// The worker's clock for TTLs, in whole seconds, refreshed every loop turn.
    var nowSeconds: UInt32 = 0

    /// Rules and zones posted by `install`, taken at the next loop turn.
    private let ruleMailbox = Mutex<RuleSet?>(nil)
    private let zoneMailbox = Mutex<LocalZones?>(nil)
    private let policyMailbox = Mutex<ClientPolicy?>(nil)
    private let mailboxFull = Atomic<Bool>(false)
    /// A copy of the counters and tallies, refreshed a few times a second, for the service to read.
    let published: Mutex<WorkerSnapshot>
    /// When the loop last published (monotonic ns): written by this worker alone every 200 ms,
    /// read by the service's watchdog; a loop that stops turning stops moving it.
    let heartbeat = Atomic<UInt64>(0)
    private let stopRequested = Atomic<Bool>(false)
    private let publishRequested = Atomic<Bool>(false)

    init(settings: Settings, pipeline: QueryPipeline, udpListeners: [Socket], tcpListeners: [Socket], quicListeners: [Socket] = [],
         queryLog: QueryLogRing? = nil, dnstap: DnstapRing? = nil, logger: Logger) throws {
        self.settings = settings
        self.pipeline = pipeline
        self.queryLog = queryLog
        self.dnstap = dnstap
        self.udpListeners = udpListeners
        self.logger = logger
        upstreamTally = UpstreamTally(servers: pipeline.upstream.servers, serversMode: pipeline.upstream.mode == .servers)
        published = Mutex(WorkerSnapshot(upstream: upstreamTally.detached()))
        epoll = try Epoll(capacity: 64)
        wakeup = try EventNotifier()
        inFlight = InFlightTable(capacity: settings.maxInFlight, maxQueryLength: Worker.maxQueryLength)
        replySockets = ReplySockets(limit: settings.replySockets, bypassMark: settings.bypassMark)
        nowSeconds = UInt32(SystemInfo.monotonicNanoseconds() / 1_000_000_000)
        try epoll.add(wakeup.fd, token: EpollToken.wake)
        for (i, listener) in udpListeners.enumerated() { try epoll.add(listener.fd, token: EpollToken.udpListener | UInt64(i)) }
        let warn: (String) -> Void = { [unowned self] in self.warn($0) }
        tcp = try ClientTCP(settings: settings.tcp, limits: settings.limits, listeners: tcpListeners, epoll: epoll, warn: warn)
        upstreamTCP = UpstreamTCP(inFlight: inFlight, epoll: epoll, bypassMark: settings.bypassMark, timeoutNanoseconds: settings.timeoutNanoseconds,
                                  maxConnections: settings.maxUpstreamConnections, warn: warn)
        quic = try QUICRelay(settings: settings.quic, maxFlows: settings.maxQUICFlows, bypassMark: settings.bypassMark, rules: pipeline.rules,
                             listeners: quicListeners, epoll: epoll, replySockets: replySockets, queryLog: queryLog, warn: warn)
        quic.localAddresses = settings.localAddresses
        quic.rateLimiter = settings.rateLimiter
        tcp.onMessage = { [unowned self] message, slot, connection, now in
            self.handleTCPMessage(message, slot: slot, connection: connection, now: now)
        }
        upstreamTCP.onAnswer = { [unowned self] index, answer in self.deliver(index, answer: answer, length: answer.count) }
        upstreamTCP.onFailure = { [unowned self] index in self.failQuery(index) }
        upstreamTCP.onMismatch = { [unowned self] server in
            if self.settings.metrics { self.upstreamTally.count(.mismatches, slot: self.upstreamTally.slot(source: server)) }
        }
        upstreamTCP.onBatchEnd = { [unowned self] in self.clientSender.flush() }
        pool4 = try UpstreamSocketPool(family: AF_INET, count: settings.upstreamSockets, bypassMark: settings.bypassMark,
                                       epoll: epoll, maxRetiring: settings.retiringSockets)
        // IPv6 upstreams are optional: a host without IPv6 still relays IPv4.
        pool6 = try? UpstreamSocketPool(family: AF_INET6, count: settings.upstreamSockets, bypassMark: settings.bypassMark,
                                        epoll: epoll, maxRetiring: settings.retiringSockets)
        if settings.sourceSockets > 0 {
            sourceSockets = SourceSockets(capacity: settings.sourceSockets, maxRetiring: settings.retiringSockets,
                                          bypassMark: settings.bypassMark, epoll: epoll)
        }
        pickBatchSockets()
    }

    deinit { answerScratch.deallocate() }

    func wakeUp() { wakeup.notify() }

    /// Asks the loop to stop taking queries, answer what is in flight, and return.
    func requestStop() {
        stopRequested.store(true, ordering: .relaxed)
        wakeup.notify()
    }

    /// The indices of the workers whose loop has not published within `nanoseconds` (they do
    /// every 200 ms): the watchdog and /healthz call these stuck.
    static func stuck(_ workers: [Worker], within nanoseconds: UInt64) -> [Int] {
        let now = SystemInfo.monotonicNanoseconds()
        return workers.indices.filter { now &- workers[$0].heartbeat.load(ordering: .relaxed) >= nanoseconds }
    }

    /// Asks the loop to publish its counters now (for SIGUSR1 and scrapes).
    func requestPublish() {
        publishRequested.store(true, ordering: .relaxed)
        wakeup.notify()
    }

    /// Hands a new rule set to this worker; it switches at its next loop turn.
    func install(_ rules: RuleSet) {
        ruleMailbox.withLock { $0 = rules }
        mailboxFull.store(true, ordering: .releasing)
        wakeUp()
    }

    /// Hands new local zones to this worker; it switches at its next loop turn.
    func install(_ zones: LocalZones) {
        zoneMailbox.withLock { $0 = zones }
        mailboxFull.store(true, ordering: .releasing)
        wakeUp()
    }

    /// Hands a new client policy (`filters.clients`, names resolved to addresses) to this worker;
    /// it switches at its next loop turn.
    func install(_ policy: ClientPolicy) {
        policyMailbox.withLock { $0 = policy }
        mailboxFull.store(true, ordering: .releasing)
        wakeUp()
    }

    /// The event loop; returns after `requestStop()` once nothing is in flight.
    func run() {
        var draining = false
        // Published at once: the watchdog and /healthz see a live worker from its first moment.
        publish()
        var lastPublish = SystemInfo.monotonicNanoseconds()
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
            pool4.turnover.maintain(now: now, busy: busyUpstreamSockets)
            pool6?.turnover.maintain(now: now, busy: busyUpstreamSockets)
            sourceSockets?.turnover.maintain(now: now, busy: busyUpstreamSockets)
            if !draining { tcp.resumeAccepting(now: now) }
            if now - lastSweep >= 100_000_000 {
                tcp.sweep(now: now)
                upstreamTCP.sweep(now: now, idle: UInt64(settings.tcp.idleTimeoutMilliseconds) * 1_000_000)
                quic.sweep(now: now)
                lastSweep = now
            }
            if now - lastPublish >= 200_000_000 || publishRequested.exchange(false, ordering: .relaxed) {
                publish()
                lastPublish = now
            }
            if !draining && stopRequested.load(ordering: .relaxed) {
                // Stop taking queries; answers to those in flight still arrive upstream.
                for listener in udpListeners {
                    epoll.remove(listener.fd)
                    listener.close()
                }
                udpListeners = []
                tcp.closeListeners()
                quic.closeListeners()
                draining = true
            }
            if draining && inFlight.isEmpty { break }
        }
        tcp.closeAll()
        upstreamTCP.closeAll()
        quic.closeAll()
        pool4.closeAll()
        pool6?.closeAll()
        sourceSockets?.closeAll()
        replySockets.closeAll()
        publish()
    }

    @inline(__always)
    private func handle(token: UInt64, events: Epoll.Events) {
        let index = EpollToken.index(token)
        switch token & EpollToken.kindMask {
        case EpollToken.udpListener where index < udpListeners.count:
            receiveQueries(fd: udpListeners[index].fd)
        case EpollToken.upstreamSocket:
            receiveAnswers(fd: Int32(bitPattern: UInt32(truncatingIfNeeded: index)))
        case EpollToken.wake:
            wakeup.drain()
        case EpollToken.tcpListener:
            tcp.accept(listener: index)
        case EpollToken.clientConnection:
            tcp.service(index, events: events)
        case EpollToken.upstreamConnection:
            upstreamTCP.service(index, events: events)
        case EpollToken.quicFlow:
            quic.receiveUpstream(token: token)
        case EpollToken.quicListener:
            quic.receive(listener: index)
        default:
            break
        }
    }

    /// Takes rules or zones posted by `install`, if any (called once per loop turn).
    @inline(__always)
    private func takeNewRules() {
        guard mailboxFull.exchange(false, ordering: .acquiring) else { return }
        if let fresh = ruleMailbox.withLock({ mailbox -> RuleSet? in
            defer { mailbox = nil }
            return mailbox
        }) {
            pipeline = pipeline.replacing(rules: fresh)
            quic.rules = pipeline.rules
        }
        if let fresh = zoneMailbox.withLock({ mailbox -> LocalZones? in
            defer { mailbox = nil }
            return mailbox
        }) {
            pipeline = pipeline.replacing(zones: fresh)
        }
        if let fresh = policyMailbox.withLock({ mailbox -> ClientPolicy? in
            defer { mailbox = nil }
            return mailbox
        }) {
            pipeline = pipeline.replacing(policy: fresh)
            quic.rules = pipeline.rules
        }
    }

    private func publish() {
        var snapshot = counters + tcp.counters + upstreamTCP.counters + quic.published
        snapshot.replyFailures += clientSender.dropped
        snapshot.upstreamSendFailures += upstreamSender.dropped
        let cache = pipeline.cache.statistics
        snapshot.cacheHits = cache.hits
        snapshot.cacheMisses = cache.misses
        snapshot.cacheInserted = cache.inserted
        snapshot.cacheStale = cache.stale
        if settings.index == 0 {
            // The shared cache's own totals, published once (the workers' snapshots are summed).
            let totals = pipeline.cache.cache.totals
            snapshot.cacheEvicted = totals.evicted
            snapshot.cacheEntries = totals.entries
        }
        snapshot.upstreamPorts = pool4.opened + (pool6?.opened ?? 0)
        snapshot.upstreamPortsReused = pool4.reused + (pool6?.reused ?? 0)
        if let sourceSockets {
            snapshot.sourceSocketsOpened += sourceSockets.opened
            snapshot.sourceSocketsOpen = sourceSockets.open
        }
        let published = WorkerSnapshot(counters: snapshot, answers: answerTally, upstream: upstreamTally.detached(), inFlight: inFlight.count)
        self.published.withLock { $0 = published }
        heartbeat.store(SystemInfo.monotonicNanoseconds(), ordering: .relaxed)
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
