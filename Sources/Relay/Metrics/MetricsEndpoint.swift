import Glibc
import HTTP
import LinuxNet
import QueryLog
import RelayCore
import Synchronization

/// `metrics.listen`: Prometheus `/metrics` and `/healthz` on their own thread (HTTPResponder),
/// never on a worker. A scrape asks every worker to publish and waits for them (at most 50 ms),
/// so the counters it shows include the queries answered just before it; between scrapes the
/// workers only publish their copies every 200 ms, as they always do.
final class MetricsEndpoint {
    /// What the pages are made from; fixed once the workers run.
    struct Sources {
        var workers: [Worker]
        var limits: ConnectionLimits
        var loadStatus: LoadStatus
        var recorders: Recorders?
        var health: ServiceHealth
        var startTime: Double
        /// Counters the kernel keeps (the bypass rules' named counters), read at each scrape.
        var kernelCounters: @Sendable () -> Counters = { Counters() }
        /// `clients.names`, when configured.
        var names: ClientNameService? = nil
    }

    private let responder: HTTPResponder

    /// Binds the listeners now (a taken port stops start-up before anything is installed);
    /// `start(serving:)` starts answering.
    init(endpoints: [Endpoint]) throws(RelayError) {
        let sources = SourcesBox()
        self.sources = sources
        responder = try HTTPResponder(name: "metrics", endpoints: endpoints) { request in
            guard let current = sources.value.withLock({ $0 }) else { return .response(.refusal(.serviceUnavailable)) }
            return .response(Self.respond(to: request.head, from: current))
        }
    }

    /// Set once by `start(serving:)`, read by the responder thread.
    private final class SourcesBox: @unchecked Sendable {
        let value = Mutex<Sources?>(nil)
    }

    private let sources: SourcesBox

    var endpoints: [Endpoint] { responder.endpoints }

    func start(serving sources: Sources) throws(Errno) {
        self.sources.value.withLock { $0 = sources }
        try responder.start()
    }

    func stop() {
        responder.stop()
    }

    static func respond(to head: HTTPRequestHead, from sources: Sources) -> HTTPResponse {
        switch head.path {
        case "/metrics":
            return HTTPResponse(status: .ok, contentType: PrometheusText.contentType, body: MetricsPage.render(inputs(sources)))
        case "/healthz":
            let problems = health(sources)
            return problems.isEmpty ? HTTPResponse(status: .ok, body: "ok\n")
                : HTTPResponse(status: .serviceUnavailable, body: problems.joined(separator: "\n") + "\n")
        case "/":
            return HTTPResponse(status: .ok, body: "tproxy-relay \(BuildInfo.version): /metrics (Prometheus), /healthz\n")
        default:
            return .refusal(.notFound)
        }
    }

    /// What is wrong, if anything: interception not installed, a worker whose loop stopped turning.
    static func health(_ sources: Sources) -> [String] {
        var problems: [String] = []
        if !sources.health.interceptionInstalled { problems.append("interception is not installed") }
        let stuck = Worker.stuck(sources.workers, within: 1_000_000_000)
        if !stuck.isEmpty { problems.append("worker \(stuck.map(String.init).joined(separator: ", ")) stopped turning") }
        return problems
    }

    static func inputs(_ sources: Sources) -> MetricsInputs {
        MetricsInputs(workers: freshSnapshots(sources.workers), kernel: sources.kernelCounters(), tcpConnections: sources.limits.open,
                      lists: sources.loadStatus.lists, zones: sources.loadStatus.zones, downloads: sources.loadStatus.downloads,
                      clientNames: sources.names.map { $0.metrics },
                      queryLog: sources.recorders?.queryLog?.totals, dnstap: sources.recorders?.dnstap?.totals, interceptionInstalled: sources.health.interceptionInstalled,
                      workersAlive: Worker.stuck(sources.workers, within: 1_000_000_000).isEmpty, startTime: sources.startTime)
    }

    /// Asks each worker to publish, waits up to 50 ms for them to, and reads their copies.
    static func freshSnapshots(_ workers: [Worker]) -> [WorkerSnapshot] {
        let asked = SystemInfo.monotonicNanoseconds()
        for worker in workers { worker.requestPublish() }
        while workers.contains(where: { $0.heartbeat.load(ordering: .relaxed) < asked }),
              SystemInfo.monotonicNanoseconds() - asked < 50_000_000 {
            usleep(1000)
        }
        return workers.map { $0.published.withLock { $0 } }
    }
}

/// What /healthz and the metrics know of the service beyond the workers: whether interception
/// is installed (set after the nft table goes in, cleared first thing at stop).
final class ServiceHealth: Sendable {
    private let installed = Atomic<Bool>(false)

    var interceptionInstalled: Bool { installed.load(ordering: .relaxed) }

    func setInterceptionInstalled(_ value: Bool) { installed.store(value, ordering: .relaxed) }
}
