import Foundation
import Glibc
import HTTP
import LinuxNet
import RelayCore
import Synchronization
import Testing
@testable import Web

/// The dashboard's routes over real loopback sockets, against a backend that records what it
/// was asked: what needs a session, the CSRF token, the login throttle, bounds, the live stream.
@Suite(.serialized) struct DashboardTests {
    final class FakeBackend: DashboardBackend, @unchecked Sendable {
        let calls = Mutex<[String]>([])
        let logPath: String?
        init(logPath: String?) { self.logPath = logPath }
        var queryLogPath: String? { logPath }
        func status() -> DashboardStatus {
            DashboardStatus(version: "test", startTime: 0, workers: 1, queries: 7, blocked: 2, cached: 1, forwarded: 4, local: 0, rewritten: 0,
                            rules: 3, pause: nil, upstreams: [], ownAddresses: ["10.53.1.1"], queryLog: logPath != nil)
        }
        func turn() -> (queries: Int, blocked: Int) { (7, 2) }
        func sources() -> DashboardSources { DashboardSources(lists: [], zones: [], lastReload: nil, lastReloadResult: nil) }
        func requestReload(by who: String) { calls.withLock { $0.append("reload") } }
        func pause(seconds: Int?, by who: String) -> DashboardStatus.Pause? {
            calls.withLock { $0.append("pause \(seconds.map(String.init) ?? "until-resumed")") }
            return seconds == 0 ? nil : .init(until: seconds.map { 1000 + Double($0) }, by: who, since: 1000)
        }
        func explain(name: String, type: String, client: String?, server: String?) -> Result<DashboardExplanation, DashboardError> {
            guard type.uppercased() == "A" else { return .failure(DashboardError("type: unknown record type '\(type)'")) }
            return .success(DashboardExplanation(name: name, type: "A", client: client, verdict: "blocked", paused: false,
                                                 steps: [.init(stage: "rules", result: "blocked")],
                                                 matches: [.init(list: "/l.txt", line: 3, text: "||\(name)^", decided: true, important: false)]))
        }
    }

    struct Fixture {
        let directory: URL
        let dashboard: Dashboard
        let backend: FakeBackend
        var endpoint: Endpoint { dashboard.endpoints[0] }
        let password = "open-sesame-1"
    }

    static func fixture() throws -> Fixture {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dashboard-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let passwordFile = directory.appendingPathComponent("web-password").path
        try PasswordHash.make("open-sesame-1", n: 1024).store(path: passwordFile)
        let log = directory.appendingPathComponent("queries.jsonl").path
        #expect(FileManager.default.createFile(atPath: log, contents: nil))
        let backend = FakeBackend(logPath: log)
        let dashboard = try Dashboard(settings: .init(listen: [Endpoint(address: IPAddress("127.0.0.1")!, port: 0)], passwordFile: passwordFile,
                                                      sessionSeconds: 600), backend: backend)
        try dashboard.start()
        return Fixture(directory: directory, dashboard: dashboard, backend: backend)
    }

    /// One request on a new connection; the whole answer (the server closes after it).
    static func exchange(_ endpoint: Endpoint, _ request: String, timeout: Int = 3) -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard endpoint.withSockAddr({ connect(fd, $0, $1) }) == 0 else { return "" }
        _ = Array(request.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func post(_ path: String, _ body: String, cookie: String? = nil, csrf: String? = nil) -> String {
        var request = "POST \(path) HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
        if let cookie { request += "Cookie: \(cookie)\r\n" }
        if let csrf { request += "X-CSRF-Token: \(csrf)\r\n" }
        return request + "\r\n" + body
    }

    static func get(_ path: String, cookie: String? = nil) -> String {
        "GET \(path) HTTP/1.1\r\nHost: relay\r\n" + (cookie.map { "Cookie: \($0)\r\n" } ?? "") + "\r\n"
    }

    /// Logs in; the cookie (name=value) and the CSRF token.
    static func login(_ f: Fixture) throws -> (cookie: String, csrf: String) {
        let answer = exchange(f.endpoint, post("/api/login", "{\"password\":\"\(f.password)\"}"))
        #expect(answer.hasPrefix("HTTP/1.1 200 "))
        let setCookie = try #require(answer.components(separatedBy: "\r\n").first { $0.hasPrefix("Set-Cookie: ") })
        #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict") && setCookie.contains("Path=/"))
        let cookie = String(setCookie.dropFirst("Set-Cookie: ".count).prefix { $0 != ";" })
        let body = try #require(answer.components(separatedBy: "\r\n\r\n").last)
        let csrf = try #require((try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: String])?["csrf"])
        return (cookie, csrf)
    }

    @Test func withoutASessionOnlyTheLoginPageAndAssetsAnswer() throws {
        let f = try Self.fixture()
        defer { f.dashboard.stop(); try? FileManager.default.removeItem(at: f.directory) }
        let root = Self.exchange(f.endpoint, Self.get("/"))
        #expect(root.hasPrefix("HTTP/1.1 303 ") && root.contains("Location: /login\r\n"))
        for path in ["/api/status", "/api/overview", "/api/lists", "/api/explain?name=a.test", "/api/queries", "/api/session"] {
            #expect(Self.exchange(f.endpoint, Self.get(path)).hasPrefix("HTTP/1.1 401 "), "\(path)")
        }
        #expect(Self.exchange(f.endpoint, Self.post("/api/pause", "{\"seconds\":\"30\"}")).hasPrefix("HTTP/1.1 401 "))
        #expect(Self.exchange(f.endpoint, Self.post("/api/reload", "{}")).hasPrefix("HTTP/1.1 401 "))
        // A made-up or stale cookie is no session.
        #expect(Self.exchange(f.endpoint, Self.get("/api/status", cookie: "\(Dashboard.cookieName)=\(String(repeating: "0", count: 32))")).hasPrefix("HTTP/1.1 401 "))
        let login = Self.exchange(f.endpoint, Self.get("/login"))
        #expect(login.hasPrefix("HTTP/1.1 200 ") && login.contains("Content-Security-Policy: default-src 'self'") && login.contains("X-Frame-Options: DENY"))
        #expect(Self.exchange(f.endpoint, Self.get("/assets/app.js")).hasPrefix("HTTP/1.1 200 "))
        #expect(f.backend.calls.withLock { $0 }.isEmpty)
    }

    @Test func aSessionOpensThePagesAndChangesNeedItsToken() throws {
        let f = try Self.fixture()
        defer { f.dashboard.stop(); try? FileManager.default.removeItem(at: f.directory) }
        let (cookie, csrf) = try Self.login(f)
        #expect(Self.exchange(f.endpoint, Self.get("/", cookie: cookie)).contains("<title>tproxy-relay</title>"))
        // A form body logs in as well as JSON does.
        let form = "password=open-sesame-%31"
        #expect(Self.exchange(f.endpoint, "POST /api/login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: \(form.utf8.count)\r\n\r\n\(form)")
            .hasPrefix("HTTP/1.1 200 "))
        let status = Self.exchange(f.endpoint, Self.get("/api/status", cookie: cookie))
        #expect(status.hasPrefix("HTTP/1.1 200 ") && status.contains("\"queries\":7"))
        // A change without the token, or with another, is refused and does nothing.
        #expect(Self.exchange(f.endpoint, Self.post("/api/pause", "{\"seconds\":\"30\"}", cookie: cookie)).hasPrefix("HTTP/1.1 403 "))
        #expect(Self.exchange(f.endpoint, Self.post("/api/pause", "{\"seconds\":\"30\"}", cookie: cookie, csrf: String(repeating: "f", count: 32))).hasPrefix("HTTP/1.1 403 "))
        #expect(f.backend.calls.withLock { $0 }.isEmpty)
        let paused = Self.exchange(f.endpoint, Self.post("/api/pause", "{\"seconds\":\"300\"}", cookie: cookie, csrf: csrf))
        #expect(paused.hasPrefix("HTTP/1.1 200 ") && paused.contains("\"until\":1300"))
        #expect(Self.exchange(f.endpoint, Self.post("/api/pause", "{\"seconds\":\"until-resumed\"}", cookie: cookie, csrf: csrf)).hasPrefix("HTTP/1.1 200 "))
        #expect(Self.exchange(f.endpoint, Self.post("/api/pause", "{\"seconds\":\"-5\"}", cookie: cookie, csrf: csrf)).hasPrefix("HTTP/1.1 400 "))
        #expect(Self.exchange(f.endpoint, Self.post("/api/pause", "{}", cookie: cookie, csrf: csrf)).hasPrefix("HTTP/1.1 400 "))
        #expect(Self.exchange(f.endpoint, Self.post("/api/reload", "{}", cookie: cookie, csrf: csrf)).hasPrefix("HTTP/1.1 200 "))
        #expect(f.backend.calls.withLock { $0 } == ["pause 300", "pause until-resumed", "reload"])
        let explained = Self.exchange(f.endpoint, Self.get("/api/explain?name=ads.example.test&type=A", cookie: cookie))
        #expect(explained.contains("\"line\":3") && explained.contains("\"verdict\":\"blocked\""))
        let refused = Self.exchange(f.endpoint, Self.get("/api/explain?name=ads.example.test&type=BOGUS", cookie: cookie))
        #expect(refused.hasPrefix("HTTP/1.1 400 ") && refused.contains("unknown record type"))
        #expect(Self.exchange(f.endpoint, Self.get("/api/explain", cookie: cookie)).hasPrefix("HTTP/1.1 400 "))
        // Logging out ends the session.
        #expect(Self.exchange(f.endpoint, Self.post("/api/logout", "{}", cookie: cookie, csrf: csrf)).contains("Max-Age=0"))
        #expect(Self.exchange(f.endpoint, Self.get("/api/status", cookie: cookie)).hasPrefix("HTTP/1.1 401 "))
    }

    @Test func wrongPasswordsInARowAreSlowedDown() throws {
        let f = try Self.fixture()
        defer { f.dashboard.stop(); try? FileManager.default.removeItem(at: f.directory) }
        var statuses: [String] = []
        for _ in 0..<10 {
            let answer = Self.exchange(f.endpoint, Self.post("/api/login", "{\"password\":\"wrong-password\"}"))
            statuses.append(String(answer.prefix(12)))
        }
        #expect(statuses.prefix(4).allSatisfy { $0 == "HTTP/1.1 401" })
        #expect(statuses.dropFirst(4).allSatisfy { $0 == "HTTP/1.1 429" })
        let limited = Self.exchange(f.endpoint, Self.post("/api/login", "{\"password\":\"\(f.password)\"}"))
        #expect(limited.hasPrefix("HTTP/1.1 429 ") && limited.contains("Retry-After: "))
    }

    @Test func oversizedRequestsAreRefused() throws {
        let f = try Self.fixture()
        defer { f.dashboard.stop(); try? FileManager.default.removeItem(at: f.directory) }
        let huge = "GET /login HTTP/1.1\r\nX-Filler: " + String(repeating: "a", count: 1 << 20) + "\r\n\r\n"
        let answer = Self.exchange(f.endpoint, huge)
        #expect(answer.isEmpty || answer.hasPrefix("HTTP/1.1 431 "))
        let body = Self.exchange(f.endpoint, "POST /api/login HTTP/1.1\r\nContent-Length: 100000\r\n\r\n")
        #expect(body.hasPrefix("HTTP/1.1 413 "))
        #expect(Self.exchange(f.endpoint, "PUT /api/pause HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 405 "))
        #expect(Self.exchange(f.endpoint, Self.get("/login")).hasPrefix("HTTP/1.1 200 "))
    }

    @Test func theLiveStreamCarriesNewLogLines() throws {
        let f = try Self.fixture()
        defer { f.dashboard.stop(); try? FileManager.default.removeItem(at: f.directory) }
        let (cookie, _) = try Self.login(f)
        #expect(Self.exchange(f.endpoint, Self.get("/api/queries?action=nuked", cookie: cookie)).hasPrefix("HTTP/1.1 400 "))
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = f.endpoint.withSockAddr { connect(fd, $0, $1) }
        _ = Array(Self.get("/api/queries?action=blocked", cookie: cookie).utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        usleep(300_000)
        let log = try #require(FileHandle(forWritingAtPath: f.dashboard.backend.queryLogPath!))
        log.seekToEndOfFile()
        log.write(Data((LogReadingTests.line(qname: "allowed.example.test", action: "allowed") + "\n" + LogReadingTests.line(qname: "live.example.test") + "\n").utf8))
        try log.close()
        var received = ""
        var buffer = [UInt8](repeating: 0, count: 8192)
        for _ in 0..<20 where !received.contains("live.example.test") {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received += String(decoding: buffer[0..<n], as: UTF8.self)
        }
        #expect(received.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream"))
        #expect(received.contains("data: {\"time\"") && received.contains("live.example.test"))
        #expect(!received.contains("allowed.example.test"))
    }

    @Test func noPasswordNoDashboard() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nopass-\(UUID().uuidString)")
        #expect(throws: RelayError.self) {
            _ = try Dashboard(settings: .init(listen: [Endpoint(address: IPAddress("127.0.0.1")!, port: 0)],
                                              passwordFile: directory.appendingPathComponent("web-password").path, sessionSeconds: 60),
                              backend: FakeBackend(logPath: nil))
        }
        do {
            _ = try Dashboard(settings: .init(listen: [Endpoint(address: IPAddress("127.0.0.1")!, port: 0)],
                                              passwordFile: "/nonexistent/web-password", sessionSeconds: 60), backend: FakeBackend(logPath: nil))
        } catch {
            #expect("\(error)".contains("no password set") && "\(error)".contains("tproxy-relay passwd"))
        }
    }
}
