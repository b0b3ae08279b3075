import Foundation
import HTTP
import LinuxNet
import RelayCore

/// The web dashboard (`web.listen`, docs/WEB.md): the pages and the JSON API under `/api/`,
/// served by its own HTTPResponder thread, never a worker. Nothing but the login page, its
/// assets and `POST /api/login` answers without a session; every state-changing request must
/// carry the session's CSRF token. Start-up order: `init` binds (a taken port or a missing
/// password stops the relay before anything is installed), `start()` serves.
public final class Dashboard: @unchecked Sendable {
    public struct Settings: Sendable {
        public var listen: [Endpoint]
        public var passwordFile: String
        public var sessionSeconds: Int
        public init(listen: [Endpoint], passwordFile: String, sessionSeconds: Int) {
            self.listen = listen
            self.passwordFile = passwordFile
            self.sessionSeconds = sessionSeconds
        }
    }

    let settings: Settings
    let backend: DashboardBackend
    private var responder: HTTPResponder!
    // Web thread only, from here on: the responder calls the handler and `turn` on its thread.
    var sessions: WebSessions
    var throttle = LoginThrottle()
    let overview: OverviewTracker
    let encoder: JSONEncoder

    public var endpoints: [Endpoint] { responder.endpoints }
    public var counters: HTTPResponder.Counters { responder.counters.withLock { $0 } }

    /// Where the dashboard says what the relay's log should show.
    let report: @Sendable (String) -> Void

    /// Checks the password file and binds the listeners.
    public init(settings: Settings, backend: DashboardBackend, report: @escaping @Sendable (String) -> Void = { _ in }) throws(RelayError) {
        self.settings = settings
        self.backend = backend
        self.report = report
        if case .failure(let error) = PasswordHash.load(path: settings.passwordFile) {
            throw RelayError(.invalidConfiguration, "web: \(error.reason); the dashboard does not start without one")
        }
        sessions = WebSessions(lifetimeSeconds: settings.sessionSeconds)
        overview = OverviewTracker(logPath: backend.queryLogPath)
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var limits = HTTPResponder.Limits()
        limits.maxConnections = 256
        limits.requestTimeoutMilliseconds = 10_000
        limits.acceptsPost = true
        limits.maxBodyBytes = 16 << 10
        limits.maxStreams = 16
        responder = try HTTPResponder(name: "web", endpoints: settings.listen, limits: limits) { [unowned self] request in
            self.handle(request)
        }
        responder.onTurn = { [unowned self] now in self.turn(now: now) }
    }

    public func start() throws(Errno) { try responder.start() }

    public func stop() { responder.stop() }

    /// Every turn of the web thread (at least once a second): the overview's sampling, and a
    /// line in the relay's log when the chart's backfill from the old log is done (what it cost).
    private func turn(now: UInt64) {
        let totals = backend.turn()
        let wasBackfilling = overview.backfilling
        let started = Self.threadCPUNanoseconds()
        overview.turn(now: Date().timeIntervalSince1970, queries: totals.queries, blocked: totals.blocked)
        if wasBackfilling {
            backfillCPU += Self.threadCPUNanoseconds() &- started
            if !overview.backfilling {
                report("web: the chart read \(overview.backfilledBytes >> 20) MiB of the query log's past in \(backfillCPU / 1_000_000) ms of CPU")
            }
        }
    }

    private var backfillCPU: UInt64 = 0

    static func threadCPUNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    // MARK: Helpers for the routes

    /// Headers every answer carries: no framing, no sniffing, nothing loaded from elsewhere.
    static let securityFields: [(name: String, value: String)] = [
        ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
    ]

    func secured(_ response: HTTPResponse) -> HTTPResponse {
        var copy = response
        copy.fields += Self.securityFields
        return copy
    }

    func json<T: Encodable>(_ value: T, status: HTTPStatus = .ok) -> HTTPResponse {
        let body = (try? encoder.encode(value)).map { [UInt8]($0) } ?? Array("{}".utf8)
        return HTTPResponse(status: status, contentType: "application/json", bytes: body)
    }

    func error(_ status: HTTPStatus, _ reason: String) -> HTTPResponse {
        json(["error": reason], status: status)
    }

    static let cookieName = "tproxy_relay_session"

    func sessionCookie(_ token: String) -> String {
        "\(Self.cookieName)=\(token); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(settings.sessionSeconds)"
    }

    static let clearedCookie = "\(cookieName)=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
}
