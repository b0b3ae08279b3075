import Foundation
import HTTP
import LinuxNet

/// The dashboard's routes: public (the login page and assets, `POST /api/login`), then every
/// other page and API behind the session, and every POST behind the CSRF token as well.
extension Dashboard {
    func handle(_ request: HTTPRequest) -> HTTPReply {
        let head = request.head
        let now = SystemInfo.monotonicNanoseconds()
        // Public.
        if head.method != .post, let asset = Assets.named(head.path) {
            return .response(secured(HTTPResponse(status: .ok, contentType: asset.type, bytes: asset.bytes)))
        }
        if head.path == "/api/login" {
            guard head.method == .post else { return .response(secured(error(.methodNotAllowed, "POST only"))) }
            return .response(secured(login(request, now: now)))
        }
        // Everything else needs a live session.
        let token = head.cookie(Self.cookieName)
        guard let session = sessions.session(token, now: now) else {
            if head.path.hasPrefix("/api/") { return .response(secured(error(.unauthorized, "log in first"))) }
            return .response(secured(HTTPResponse(status: .seeOther, body: "").with("Location", "/login")))
        }
        if head.method == .post {
            guard let sent = head.field("x-csrf-token"), WebSessions.same(sent, session.csrf) else {
                return .response(secured(error(.forbidden, "missing or wrong X-CSRF-Token")))
            }
        }
        let who = "web (\(request.peer))"
        switch (head.method, head.path) {
        case (.get, "/"), (.head, "/"), (.get, "/index.html"):
            return .response(secured(HTTPResponse(status: .ok, contentType: "text/html; charset=utf-8", bytes: Assets.index)))
        case (.get, "/api/session"):
            return .response(secured(json(["csrf": session.csrf])))
        case (.post, "/api/logout"):
            sessions.close(token)
            return .response(secured(json(["ok": true]).with("Set-Cookie", Self.clearedCookie)))
        case (.get, "/api/status"):
            return .response(secured(json(backend.status())))
        case (.get, "/api/overview"):
            return .response(secured(overviewResponse()))
        case (.get, "/api/lists"):
            return .response(secured(json(backend.sources())))
        case (.post, "/api/reload"):
            backend.requestReload(by: who)
            return .response(secured(json(["requested": true])))
        case (.post, "/api/pause"):
            return .response(secured(pauseResponse(request, by: who)))
        case (.get, "/api/explain"):
            return .response(secured(explainResponse(head)))
        case (.get, "/api/queries"):
            return liveStream(head)
        default:
            return .response(secured(error(.notFound, "no such page")))
        }
    }

    // MARK: Login

    private func login(_ request: HTTPRequest, now: UInt64) -> HTTPResponse {
        let wait = throttle.wait(request.peer, now: now)
        if wait > 0 {
            let seconds = (wait + 999_999_999) / 1_000_000_000
            return error(.tooManyRequests, "too many wrong passwords: wait \(seconds) s").with("Retry-After", "\(seconds)")
        }
        guard let password = Self.formOrJSON(request)["password"], !password.isEmpty else {
            return error(.badRequest, "no password given")
        }
        // Read each time: `tproxy-relay passwd` may have changed it while the relay runs.
        let stored: PasswordHash
        switch PasswordHash.load(path: settings.passwordFile) {
        case .success(let hash): stored = hash
        case .failure(let problem): return error(.serviceUnavailable, problem.reason)
        }
        guard stored.verify(password) else {
            throttle.failed(request.peer, now: now)
            return error(.unauthorized, "wrong password")
        }
        throttle.succeeded(request.peer)
        let opened = sessions.open(peer: request.peer, now: now)
        return json(["csrf": opened.csrf]).with("Set-Cookie", sessionCookie(opened.token))
    }

    /// The fields of a form (`application/x-www-form-urlencoded`) or JSON object body; only
    /// string values are taken.
    static func formOrJSON(_ request: HTTPRequest) -> [String: String] {
        let type = request.head.field("content-type")?.lowercased() ?? ""
        if type.hasPrefix("application/json") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any] else { return [:] }
            var out: [String: String] = [:]
            for (key, value) in object {
                if let text = value as? String { out[key] = text } else if let number = value as? NSNumber { out[key] = number.stringValue }
            }
            return out
        }
        guard let text = String(validating: request.body, as: UTF8.self) else { return [:] }
        return HTTPForm.decode(text)
    }

    // MARK: Pause, explain, overview

    private func pauseResponse(_ request: HTTPRequest, by who: String) -> HTTPResponse {
        let fields = Self.formOrJSON(request)
        let seconds: Int?
        switch fields["seconds"] {
        case "until-resumed", "forever": seconds = nil
        case let text?:
            guard let value = Int(text), value >= 0, value <= 7 * 86_400 else {
                return error(.badRequest, "seconds: expected 0 (resume) to 604800, or until-resumed")
            }
            seconds = value
        case nil:
            return error(.badRequest, "seconds: missing (30, 300, 3600, until-resumed, or 0 to resume)")
        }
        let pause = backend.pause(seconds: seconds, by: who)
        return json(PauseReply(pause: pause))
    }

    private struct PauseReply: Encodable {
        var pause: DashboardStatus.Pause?
    }

    private func explainResponse(_ head: HTTPRequestHead) -> HTTPResponse {
        let items = head.query.map(HTTPForm.decode) ?? [:]
        guard let name = items["name"]?.trimmingCharacters(in: .whitespaces), !name.isEmpty else {
            return error(.badRequest, "name: missing")
        }
        let type = items["type"].flatMap { $0.isEmpty ? nil : $0 } ?? "A"
        let client = items["client"].flatMap { $0.isEmpty ? nil : $0 }
        let server = items["server"].flatMap { $0.isEmpty ? nil : $0 }
        switch backend.explain(name: name, type: type, client: client, server: server) {
        case .success(let explanation): return json(explanation)
        case .failure(let problem): return error(.badRequest, problem.reason)
        }
    }

    private struct OverviewReply: Encodable {
        struct Minute: Encodable {
            var t: Int
            var q: Int
            var b: Int
        }
        struct Count: Encodable {
            var name: String
            var count: Int
        }
        struct Server: Encodable {
            var server: String
            var queries: Int
            var clients: Int
            var hardCoded: Bool
        }
        var perMinute: [Minute]
        var backfilling: Bool
        var entries: Int
        var since: String?
        var domains: [Count]
        var blocked: [Count]
        var clients: [Count]
        var servers: [Server]
        var quic: [Count]
        var status: DashboardStatus
    }

    private func overviewResponse() -> HTTPResponse {
        let now = Date().timeIntervalSince1970
        let status = backend.status()
        let top = overview.topLists(now: now)
        let own = Set(status.ownAddresses)
        let counts = { (pairs: [(String, Int)]) in pairs.map { OverviewReply.Count(name: $0.0, count: $0.1) } }
        let reply = OverviewReply(
            perMinute: overview.perMinute(now: now).map { .init(t: $0.start, q: $0.queries, b: $0.blocked) },
            backfilling: overview.backfilling, entries: top.entries, since: top.since,
            domains: counts(top.domains), blocked: counts(top.blocked), clients: counts(top.clients),
            servers: top.servers.map { .init(server: $0.server, queries: $0.queries, clients: $0.clients, hardCoded: !own.contains($0.server)) },
            quic: counts(top.quic), status: status)
        return json(reply)
    }

    // MARK: Live

    private func liveStream(_ head: HTTPRequestHead) -> HTTPReply {
        guard let path = backend.queryLogPath else {
            return .response(secured(error(.conflict, "the query log is off (querylog.path): nothing to stream")))
        }
        let filter: LiveFeed.Filter
        switch LiveFeed.Filter.parse(head.query.map(HTTPForm.decode) ?? [:]) {
        case .success(let parsed): filter = parsed
        case .failure(let problem): return .response(secured(error(.badRequest, problem.reason)))
        }
        let feed = LiveFeed(path: path, filter: filter)
        return .stream(HTTPStream(fields: Self.securityFields) { now in feed.next(now: now) })
    }
}
