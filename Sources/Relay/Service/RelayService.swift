import Configuration
import Glibc
import Interception
import LinuxNet
import Logging
import Pipeline
import QueryLog
import RelayCore
import Rules
import Web
import Zones

/// The relay as a service with an explicit state: `start()` does the privileged set-up (sockets,
/// policy routing, the nft table, workers), `run()` serves until SIGTERM/SIGINT, and `stop()`
/// tears down in the order that keeps the LAN working: interception first (new queries go
/// straight to their servers), then in-flight queries are answered, then routes are removed.
public final class RelayService {
    public enum State: Equatable, Sendable { case idle, running, draining, stopped }

    public private(set) var state: State = .idle
    private let configuration: Configuration
    private let logger: Logger
    private var workers: [Worker] = []
    private var threads: [SystemThread] = []
    private var routing: PolicyRouting?
    private var table: NftablesTable?
    private var watcher: ListWatcher?
    /// `clients.names`: hosts and lease files, reverse lookups; nil without sources.
    private var names: ClientNameService?
    /// Downloads the URL lists (`filters.lists` entries that are URLs).
    private var updater: ListUpdater?
    /// The query log and dnstap writers.
    private var recorders: Recorders?
    /// The lists, zones and blocked addresses in service, their reloads and the pause.
    private let sources: FilterSources
    /// `web.listen`: the dashboard, and what it is shown.
    private var dashboard: Dashboard?
    private var dashboardBackend: RelayDashboardBackend?
    /// Whether IPv6 is relayed (false when the host has no usable IPv6 listener address).
    public private(set) var ipv6Enabled = false
    /// The service manager (systemd's notify socket), when there is one.
    private let notifier: ServiceNotifier
    /// `metrics.listen`: /metrics and /healthz, and what they report beyond the workers.
    private var metrics: MetricsEndpoint?
    private let health = ServiceHealth()

    /// Where /metrics and /healthz are served (the kernel's port when 0 was configured).
    public var metricsEndpoints: [Endpoint] { metrics?.endpoints ?? [] }

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        notifier = ServiceNotifier(logger: logger)
        sources = FilterSources(configuration: configuration, logger: logger)
    }

    deinit {
        if state == .running || state == .draining { stop() }
    }

    // MARK: Start-up

    /// Checks privileges and interfaces, opens the listeners, installs policy routing and the nft
    /// table, and starts the workers. On failure nothing stays installed.
    public func start() throws {
        precondition(state == .idle, "start() runs once")
        let intercept = configuration.intercept
        let missing = SystemInfo.missingCapabilities(SystemInfo.Capability.allCases)
        guard missing.isEmpty else {
            throw RelayError(.permissionDenied, "tproxy-relay lacks " + missing.map { "\($0.name) (\($0.purpose))" }.joined(separator: ", ")
                + ": run it as root, or grant them (systemd AmbientCapabilities=, setpriv --ambient-caps)")
        }
        guard !intercept.interfaces.isEmpty else {
            throw RelayError(.invalidConfiguration, "intercept.interfaces is empty: name the LAN interfaces to capture, such as [lan0]")
        }
        for name in intercept.interfaces where SystemInfo.interfaceIndex(name) == nil {
            throw RelayError(.noSuchInterface, "interface \(name) (intercept.interfaces) does not exist in this network namespace")
        }
        warnAboutSourceValidMark()
        // Lists, zones and blocked-address files load before anything is installed: one that
        // cannot be read stops start-up.
        let blocked = try sources.loadAtStart()
        let rules = sources.rules, zones = sources.zones
        // The metrics and web ports are bound before anything is installed: a taken port, or a
        // dashboard without a password, stops start-up.
        let metrics = configuration.metrics.listen.isEmpty ? nil : try MetricsEndpoint(endpoints: configuration.metrics.listen)
        let backend = RelayDashboardBackend(configuration: configuration, sources: sources, logger: logger)
        let dashboard = configuration.web.listen.isEmpty ? nil
            : try Dashboard(settings: .init(listen: configuration.web.listen, passwordFile: configuration.web.passwordFile,
                                            sessionSeconds: configuration.web.sessionSeconds), backend: backend,
                                  report: { [logger] in logger.info("\($0)") })

        // The owned, still empty, nft table is the instance lock: take it before touching anything
        // a running instance depends on (its SO_REUSEPORT group, its policy routes).
        let table = try NftablesTable(name: intercept.table)

        let count = configuration.resolvedWorkers(availableCPUs: SystemInfo.availableCPUs)
        let budget = try DescriptorBudget.forService(configuration, workers: count, logger: logger)
        var listenerSets: [(udp: [Socket], tcp: [Socket], quic: [Socket])] = []
        let v4 = Endpoint(address: configuration.listen.address, port: configuration.listen.dnsPort)
        let v6 = configuration.listen.address6.map { Endpoint(address: $0, port: configuration.listen.dnsPort) }
        ipv6Enabled = v6 != nil
        // A transparent socket binds to any address, so probe with a plain one whether the IPv6
        // listen address is really local (it is not where IPv6 is disabled; policy routing for
        // IPv6 would then fail with EACCES).
        if let v6, !Listeners.isLocalAddress(v6) {
            logger.warning("IPv6 is off: \(v6.address) is not an address of this host (IPv6 disabled?); relaying IPv4 only")
            ipv6Enabled = false
        }
        let quicPort = configuration.listen.quicPort
        for _ in 0..<count {
            var udp = [try Listeners.datagram(v4)]
            var tcp = [try Listeners.stream(v4)]
            var quic: [Socket] = []
            if intercept.quic { quic.append(try Listeners.datagram(Endpoint(address: v4.address, port: quicPort))) }
            if let v6, ipv6Enabled {
                udp.append(try Listeners.datagram(v6))
                tcp.append(try Listeners.stream(v6))
                if intercept.quic { quic.append(try Listeners.datagram(Endpoint(address: v6.address, port: quicPort))) }
            }
            listenerSets.append((udp, tcp, quic))
        }

        // Client names before the workers: their first policy has the names' addresses.
        let names = configuration.clients.names.isEmpty ? nil : ClientNameService(configuration: configuration, logger: logger)
        try names?.load()

        let rateLimiter = ClientRateLimiter(limits: configuration.limits)
        let limits = ConnectionLimits(maxTotal: budget.tcpConnections, maxPerClient: min(configuration.tcp.maxConnectionsPerClient, budget.tcpConnections))
        let settings = { (index: Int) in
            Worker.Settings(index: index,
                            timeoutNanoseconds: UInt64(self.configuration.upstream.timeoutMilliseconds) * 1_000_000,
                            upstreamSockets: self.configuration.upstream.sockets,
                            maxInFlight: self.configuration.upstream.maxInFlight,
                            bypassMark: intercept.bypassMark, tcp: self.configuration.tcp, limits: limits,
                            answerTTL: self.configuration.filters.ttl, maxTTL: self.configuration.cache.maxTTL,
                            quic: self.configuration.quic,
                            maxQUICFlows: max(1, budget.quicFlows / count),
                            replySockets: budget.replySocketsPerWorker,
                            maxUpstreamConnections: budget.upstreamConnectionsPerWorker,
                            retiringSockets: budget.retiringPerPool,
                            sourceSockets: budget.sourceSocketsPerWorker,
                            keepClientSubnet: self.configuration.upstream.keepClientSubnet,
                            localAddresses: intercept.local ? SystemInfo.localAddresses() : [],
                            metrics: metrics != nil || dashboard != nil,
                            rateLimiter: rateLimiter, rateLimitAction: self.configuration.limits.action)
        }
        // The query log's and dnstap's writers and one ring each per worker; files are opened now
        // so that a bad path stops start-up with a clear message.
        let recorders = Recorders(configuration: configuration, names: names?.directory, logger: logger)
        let rings = listenerSets.map { _ in recorders.makeRings() }
        try recorders.start()
        self.recorders = recorders
        // One answer cache for all workers (sharded; Pipeline/Cache/SharedAnswerCache).
        let cache = SharedAnswerCache(settings: QueryPipeline.cacheSettings(configuration.cache), workers: listenerSets.count)
        workers = try listenerSets.enumerated().map {
            // Each worker its own pipeline (its scratch space and counts); rules, zones and the
            // cache are shared.
            let pipeline = QueryPipeline(configuration: configuration, rules: rules, zones: zones,
                                         listeners: $0.element.udp.compactMap { try? $0.localEndpoint() }, cache: cache,
                                         policy: names?.policy)
            return try Worker(settings: settings($0.offset), pipeline: pipeline, udpListeners: $0.element.udp, tcpListeners: $0.element.tcp,
                              quicListeners: $0.element.quic, queryLog: rings[$0.offset].queryLog, dnstap: rings[$0.offset].dnstap,
                              logger: logger)
        }

        // Routes before the rules: the moment a packet is marked, its route must exist.
        let routing = try PolicyRouting(mark: intercept.mark, table: intercept.routeTable, priority: intercept.rulePriority,
                                        interfaces: intercept.interfaces, ipv6: ipv6Enabled,
                                        localMark: intercept.local ? intercept.localMark : nil,
                                        identityMark: configuration.upstream.usesSourceIdentity ? intercept.identityMark : nil)
        do {
            try table.installRules(interceptionPlan(ipv6: ipv6Enabled))
            if let blocked { try table.replaceBlockedAddresses(blocked) }
        } catch {
            routing.remove()
            throw error
        }
        self.routing = routing
        self.table = table
        sources.attach(workers: workers, table: table)
        health.setInterceptionInstalled(true)
        for (index, worker) in workers.enumerated() {
            do {
                threads.append(try SystemThread.start(name: "worker-\(index)") { worker.run() })
            } catch {
                preconditionFailure("cannot start worker \(index) (pthread_create: \(error))")
            }
        }
        if configuration.filters.watch && (!configuration.filters.localLists.isEmpty || !configuration.bypass.blockAddresses.isEmpty || configuration.zones != nil) {
            let watcher = ListWatcher(paths: configuration.filters.localLists + configuration.bypass.blockAddresses, zonesDirectory: configuration.zones, logger: logger) { [weak self] kinds in
                if kinds.contains(.lists) {
                    self?.logger.info("a list changed on disk: reloading")
                    self?.sources.reloadRules()
                }
                if kinds.contains(.zones) {
                    self?.logger.info("a zone file changed on disk: reloading zones")
                    self?.sources.reloadZones()
                }
            }
            watcher.start()
            self.watcher = watcher
        }
        if let names {
            do {
                try names.start(workers: workers)
                self.names = names
            } catch {
                logger.error("client names: cannot start their thread (\(error)); clients are shown by address")
            }
        }
        if !configuration.filters.subscriptions.isEmpty {
            // After the workers and the table: a download is a socket of this host like any other
            // (its own name lookup may pass the relay with intercept.local), marked to pass the table.
            let updater = ListUpdater(configuration: configuration, sources: sources, logger: logger)
            do {
                try updater.start()
                self.updater = updater
            } catch {
                logger.error("list updater: cannot start its thread (\(error)); the URL lists stay as cached")
            }
        }
        if let metrics {
            do {
                let plan = interceptionPlan(ipv6: ipv6Enabled)
                try metrics.start(serving: .init(workers: workers, limits: limits, loadStatus: sources.loadStatus, recorders: recorders,
                                                 health: health, startTime: SystemInfo.wallClockSeconds(),
                                                 kernelCounters: { BlockedAddresses.counters(NftablesTable.counters(table: plan.tableName, names: plan.bypassCounters)) },
                                                 names: self.names))
                self.metrics = metrics
                logger.info("metrics: http://\(metrics.endpoints.map(\.description).joined(separator: ", http://"))/metrics and /healthz")
            } catch {
                logger.error("metrics: cannot start the responder thread (\(error)); relaying without metrics")
            }
        }
        if let dashboard {
            backend.attach(workers: workers, recorders: recorders, kernelCounters: { [weak self] in self?.kernelCounters() ?? Counters() }, names: names)
            do {
                try dashboard.start()
                self.dashboard = dashboard
                self.dashboardBackend = backend
                logger.info("web dashboard: http://\(dashboard.endpoints.map(\.description).joined(separator: ", http://"))/")
            } catch {
                logger.error("web: cannot start the dashboard's thread (\(error)); relaying without it")
            }
        }
        state = .running
        notifier.ready(status: "relaying DNS on \(intercept.interfaces.joined(separator: ","))")
        logger.info("relaying DNS over UDP and TCP\(intercept.quic ? (configuration.quic.block ? ", blocking QUIC" : ", QUIC on port \(quicPort)") : ""): \(count) workers, interfaces \(intercept.interfaces.joined(separator: ","))\(intercept.local ? " and this host's own traffic" : ""), listening on \(v4)\(ipv6Enabled ? " and \(v6!)" : ""), upstream \(configuration.upstreamDescription)")
    }

    /// The nft rules this configuration asks for.
    public func interceptionPlan(ipv6: Bool) -> InterceptionPlan { configuration.interceptionPlan(ipv6: ipv6) }

    /// With src_valid_mark=1 the reverse-path check uses the packet's mark; the policy rules
    /// match the captured interfaces only, so that check never reaches the TPROXY table
    /// (PolicyRouting). Strict rp_filter (1) can still drop packets whose source is not routed
    /// back out of the interface they came in on: that is the LAN's routing, said once here.
    private func warnAboutSourceValidMark() {
        func value(_ key: String) -> Int? {
            (try? SystemInfo.readFile("/proc/sys/net/ipv4/conf/\(key)"))
                .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        if value("all/src_valid_mark") == 1 {
            logger.info("net.ipv4.conf.all.src_valid_mark=1: policy rules match iif \(configuration.intercept.interfaces.joined(separator: ",")) so that reverse-path checks do not see the TPROXY route")
        }
    }

    // MARK: Running

    /// The sum of every worker's counters.
    public var counters: Counters {
        workers.reduce(kernelCounters()) { $0 + $1.published.withLock { $0.counters } }
    }

    /// Blocks the service signals in the calling thread (and in every thread it starts later).
    /// Call before `start()` so that workers never receive them.
    public static func blockSignals() {
        var set = signalSet
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    private static var signalSet: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGUSR1] { sigaddset(&set, signal) }
        return set
    }

    /// Serves until SIGTERM or SIGINT. SIGUSR1 logs the counters (as dnsmasq does); SIGHUP reloads
    /// what can be reloaded. With a systemd watchdog, wakes every half interval to ping it while
    /// every worker's loop turns.
    public func run() {
        var set = Self.signalSet
        while state == .running {
            var signal: Int32 = 0
            if let interval = notifier.watchdogInterval {
                var timeout = timespec(tv_sec: Int(interval / 1_000_000_000), tv_nsec: Int(interval % 1_000_000_000))
                signal = sigtimedwait(&set, nil, &timeout)
                if signal < 0 {
                    if Worker.stuck(workers, within: max(500_000_000, interval)).isEmpty { notifier.watchdog() }
                    continue
                }
            } else {
                guard sigwait(&set, &signal) == 0 else { continue }
            }
            switch signal {
            case SIGUSR1:
                for worker in workers { worker.requestPublish() }
                usleep(20_000)
                logger.info("counters: \(counters.summary)")
            case SIGHUP:
                notifier.reloading()
                sources.reloadRules()
                sources.reloadZones()
                notifier.ready(status: "reloaded")
            default:
                logger.info("signal \(signal): stopping")
                stop()
            }
        }
    }

    /// What the kernel counted in the table's named counters (bypass rules), as counters.
    private func kernelCounters() -> Counters {
        let plan = interceptionPlan(ipv6: ipv6Enabled)
        guard table != nil, !plan.bypassCounters.isEmpty else { return Counters() }
        return BlockedAddresses.counters(NftablesTable.counters(table: plan.tableName, names: plan.bypassCounters))
    }

    /// Removes interception, lets workers answer what is in flight, removes routes.
    public func stop() {
        guard state == .running else { return }
        notifier.stopping()
        health.setInterceptionInstalled(false)
        state = .draining
        table = nil  // closes the owning netlink socket: the kernel drops the table now
        updater?.stop()
        updater = nil
        names?.stop()
        names = nil
        sources.detach()
        watcher?.stop()
        watcher = nil
        for worker in workers { worker.requestStop() }
        for thread in threads { thread.join() }
        threads = []
        // After the workers: what they answered while draining is recorded too.
        for summary in recorders?.stop() ?? [] { logger.info("\(summary)") }
        recorders = nil
        routing?.remove()
        routing = nil
        dashboard?.stop()
        dashboard = nil
        metrics?.stop()  // last: /healthz says 503 while the rest drains
        metrics = nil
        state = .stopped
        logger.info("stopped; counters: \(counters.summary)")
    }
}

import Foundation
