import ClientNames
import Configuration
import Foundation
import LinuxNet
import Logging
import Pipeline
import QueryLog
import RelayCore
import Rules
import Synchronization
import Web
import Zones

/// What the web dashboard is shown, read from the relay: the workers' published counters (never
/// a worker's own state), the lists and zones in service, the pause. Called on the web thread.
final class RelayDashboardBackend: DashboardBackend, @unchecked Sendable {
    private let configuration: Configuration
    private let filters: FilterSources
    private let logger: Logger
    private let startTime = SystemInfo.wallClockSeconds()
    private struct Attached {
        var workers: [Worker] = []
        var kernelCounters: @Sendable () -> Counters = { Counters() }
        /// `clients.names`, for explain: a policy written with names, and a client given by name.
        var names: ClientNameService?
    }
    private let attached = Mutex(Attached())

    init(configuration: Configuration, sources: FilterSources, logger: Logger) {
        self.configuration = configuration
        self.filters = sources
        self.logger = logger
    }

    func attach(workers: [Worker], recorders: Recorders?, kernelCounters: @escaping @Sendable () -> Counters, names: ClientNameService?) {
        attached.withLock { $0 = Attached(workers: workers, kernelCounters: kernelCounters, names: names) }
    }

    var queryLogPath: String? { configuration.querylog.isOn ? configuration.querylog.path : nil }

    func turn() -> (queries: Int, blocked: Int) {
        _ = filters.pause  // ends it when its time is up
        let workers = attached.withLock { $0.workers }
        var queries = 0, blocked = 0
        for worker in workers {
            let counters = worker.published.withLock { $0.counters }
            queries += counters.received + counters.tcpQueries
            blocked += counters.blocked
        }
        return (queries, blocked)
    }

    func status() -> DashboardStatus {
        let (workers, kernel) = attached.withLock { ($0.workers, $0.kernelCounters) }
        var counters = kernel()
        var answers = AnswerTally()
        var upstream: UpstreamTally?
        for worker in workers {
            let snapshot = worker.published.withLock { $0 }
            counters = counters + snapshot.counters
            answers = answers + snapshot.answers
            upstream = upstream.map { $0 + snapshot.upstream } ?? snapshot.upstream.detached()
        }
        var upstreams: [DashboardStatus.Upstream] = []
        if let upstream {
            for (slot, label) in upstream.labels.enumerated() where upstream.value(.queries, slot: slot) > 0 || label != "rule" {
                upstreams.append(.init(server: label, queries: upstream.value(.queries, slot: slot), timeouts: upstream.value(.timeouts, slot: slot)))
            }
        }
        var own = Set([configuration.listen.address.description])
        if let v6 = configuration.listen.address6 { own.insert(v6.description) }
        for address in SystemInfo.localAddresses() { own.insert(address.description) }
        return DashboardStatus(
            version: BuildInfo.version, startTime: startTime, workers: workers.count,
            queries: counters.received + counters.tcpQueries, blocked: counters.blocked, cached: counters.cacheHits,
            forwarded: counters.forwarded, local: counters.localAnswers, rewritten: counters.rewritten,
            rules: filters.rules.ruleCount, pause: filters.pause, upstreams: upstreams,
            forwardedP50Ms: answers.forwarded.quantileMilliseconds(0.5), forwardedP99Ms: answers.forwarded.quantileMilliseconds(0.99),
            ownAddresses: own.sorted(),
            queryLog: queryLogPath != nil)
    }

    func sources() -> DashboardSources {
        let status = Dictionary(filters.loadStatus.lists, uniquingKeysWith: { a, _ in a })
        let zoneStatus = Dictionary(filters.loadStatus.zones, uniquingKeysWith: { a, _ in a })
        let reports = Dictionary(filters.rules.reports.map { ($0.list, $0) }, uniquingKeysWith: { a, _ in a })
        var lists: [DashboardSources.List] = []
        for path in configuration.filters.lists {
            let report = reports[path] ?? ListReport(list: path)
            let entry = status[path]
            let rejected: [DashboardSources.Rejected] = report.rejected.prefix(100).map { DashboardSources.Rejected(line: $0.line, text: $0.text, reason: $0.reason) }
            let lastLoad: Double? = (entry?.lastSuccess ?? 0) > 0 ? entry?.lastSuccess : nil
            lists.append(DashboardSources.List(path: path, format: ListFormat.guess(path: path), rules: report.rules, exceptions: report.exceptions,
                                               ignored: report.ignored, rejectedCount: report.rejected.count, rejected: rejected,
                                               loaded: entry?.succeeded ?? false, lastLoad: lastLoad))
        }
        let zones = filters.zones.zones.map { zone -> DashboardSources.Zone in
            let entry = zoneStatus[zone.file]
            return .init(file: zone.file, origin: zone.origin, records: zone.recordCount, loaded: entry?.succeeded ?? true,
                         lastLoad: entry.flatMap { $0.lastSuccess > 0 ? $0.lastSuccess : nil })
        }
        let last = filters.lastReload
        return DashboardSources(lists: lists, zones: zones, lastReload: last?.time, lastReloadResult: last?.result)
    }

    /// The same path as SIGHUP: the signal goes to this process, whose main thread reloads.
    func requestReload(by who: String) {
        logger.info("reload asked for by \(who)")
        kill(getpid(), SIGHUP)
    }

    func pause(seconds: Int?, by who: String) -> DashboardStatus.Pause? {
        filters.pause(seconds: seconds, by: who)
    }

    func explain(name: String, type: String, client: String?, server: String?) -> Result<DashboardExplanation, DashboardError> {
        guard let number = RecordType.number(type) else { return .failure(DashboardError("type: unknown record type '\(type)'")) }
        // The names the workers' policy was made from: the verdict is theirs.
        let names = attached.withLock { $0.names }?.publishedTable ?? .empty
        var address: IPAddress?
        if let client {
            let reference = ClientReference(client, names: names)
            if let problem = reference.problem { return .failure(DashboardError("client: '\(client)': \(problem)")) }
            address = reference.address
        }
        var destination = Endpoint(address: .anyV4, port: 53)
        if let server {
            guard let parsed = Endpoint(parsing: server, defaultPort: 53) else { return .failure(DashboardError("server: '\(server)' is not an address")) }
            destination = parsed
        }
        let paused = filters.pause != nil
        let listen = configuration.listen
        let listeners = [Endpoint(address: listen.address, port: listen.dnsPort)] + (listen.address6.map { [Endpoint(address: $0, port: listen.dnsPort)] } ?? [])
        // A cache of its own, small: the verdict is the pipeline's with nothing cached.
        var small = configuration
        small.cache.entries = 64
        let pipeline = QueryPipeline(configuration: small, rules: paused ? .empty : filters.rules, zones: filters.zones, listeners: listeners,
                                     policy: configuration.filters.clientPolicy(names: names))
        let explanation: Explanation
        do {
            explanation = try Explanation(pipeline: pipeline, name: name, type: number, client: address, destination: destination)
        } catch {
            return .failure(DashboardError("\(error)"))
        }
        let decided = explanation.outcome.rule != .none
        return .success(DashboardExplanation(
            name: name, type: type.uppercased(), client: client, verdict: explanation.verdict, paused: paused,
            steps: explanation.steps.map { .init(stage: $0.stage, result: $0.result) },
            matches: explanation.matches.enumerated().map {
                .init(list: $0.element.source.list, line: $0.element.source.line, text: $0.element.source.text,
                      decided: $0.offset == 0 && decided, important: $0.element.important)
            }))
    }
}
