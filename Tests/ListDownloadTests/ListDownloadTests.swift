import Foundation
import HTTP
import Synchronization
import Testing
@testable import ListDownload
import LinuxNet
import RelayCore

/// The downloader against a real HTTP server on loopback (the project's own responder): status
/// handling, conditional requests, redirects, the size cap, and the refresh's checks and swap.
@Suite(.serialized) struct ListDownloadTests {
    /// A server whose answer to each request the test sets; it records the requests' validators.
    final class Server: @unchecked Sendable {
        final class State: Sendable {
            let answer = Mutex<@Sendable (HTTPRequest) -> HTTPResponse>({ _ in .refusal(.notFound) })
            let seen = Mutex<[String]>([])
        }
        let responder: HTTPResponder
        let state = State()
        var seen: [String] { state.seen.withLock { $0 } }
        var url: String { "http://\(responder.endpoints[0])/list.txt" }

        init() throws {
            let state = self.state
            responder = try HTTPResponder(name: "list-test", endpoints: [Endpoint(address: IPAddress("127.0.0.1")!, port: 0)]) { request in
                state.seen.withLock { $0.append("\(request.head.path) inm=\(request.head.field("if-none-match") ?? "-")") }
                return .response(state.answer.withLock { $0 }(request))
            }
            try responder.start()
        }

        func respond(_ body: @escaping @Sendable (HTTPRequest) -> HTTPResponse) { state.answer.withLock { $0 = body } }
        deinit { responder.stop() }
    }

    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "list-download-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func request(_ url: String, etag: String? = nil, maxBytes: Int = 1 << 20) -> HTTPDownload.Request {
        HTTPDownload.Request(url: url, etag: etag, maxBytes: maxBytes, timeoutSeconds: 5)
    }

    func fetchError(_ request: HTTPDownload.Request) -> DownloadError? {
        do { _ = try HTTPDownload.fetch(request, into: directory + "/out") } catch { return error }
        return nil
    }

    @Test func aListIsFetchedWithItsValidatorsAndThen304() throws {
        let server = try Server()
        server.respond { request in
            if request.head.field("if-none-match") == "\"v1\"" { return HTTPResponse.refusal(.notModified).with("ETag", "\"v1\"") }
            return HTTPResponse(status: .ok, body: "||ads.lab.test^\n").with("ETag", "\"v1\"").with("Last-Modified", "Tue, 01 Dec 2026 10:00:00 GMT")
        }
        let first = try HTTPDownload.fetch(request(server.url), into: directory + "/out")
        guard case .modified(let body) = first else { Issue.record("expected a body, got \(first)"); return }
        #expect(body.bytes == 16 && body.etag == "\"v1\"" && body.lastModified == "Tue, 01 Dec 2026 10:00:00 GMT")
        #expect(body.sha256 == "aa7d343b55df79cd983ca003753c5676797ed523fd2b9e996304700611408113")
        #expect(try String(contentsOfFile: directory + "/out", encoding: .utf8) == "||ads.lab.test^\n")
        #expect(try HTTPDownload.fetch(request(server.url, etag: "\"v1\""), into: directory + "/out") == .notModified)
        #expect(server.seen == ["/list.txt inm=-", "/list.txt inm=\"v1\""])
    }

    @Test func statusesOtherThan200And304AreErrors() throws {
        let server = try Server()
        for status in [HTTPStatus.internalServerError, .notFound, .forbidden] {
            server.respond { _ in .refusal(status) }
            #expect(fetchError(request(server.url))?.code == .status)
            #expect(fetchError(request(server.url))?.reason == "the server answered HTTP \(status.rawValue)")
        }
    }

    @Test func redirectsAreFollowedWithinBoundsAndOnlyToHTTP() throws {
        let server = try Server()
        let base = "http://\(server.responder.endpoints[0])"
        server.respond { request in
            switch request.head.path {
            case "/list.txt": return HTTPResponse.refusal(.found).with("Location", "/moved.txt")
            case "/moved.txt": return HTTPResponse(status: .ok, body: "||moved.lab.test^\n")
            case "/ftp": return HTTPResponse.refusal(.found).with("Location", "ftp://127.0.0.1/x")
            default: return HTTPResponse.refusal(.found).with("Location", "/loop")  // /loop → /loop → ...
            }
        }
        guard case .modified(let body) = try HTTPDownload.fetch(request(base + "/list.txt"), into: directory + "/out") else { Issue.record("no body"); return }
        #expect(body.bytes == 18)
        #expect(fetchError(request(base + "/loop"))?.code == .network)
        #expect(fetchError(request(base + "/loop"))?.reason.contains("redirect") == true)
        #expect(fetchError(request(base + "/ftp"))?.code == .network)
    }

    @Test func theSizeCapHoldsForDeclaredLengths() throws {
        let server = try Server()
        server.respond { _ in HTTPResponse(status: .ok, contentType: "text/plain", bytes: Array(repeating: 0x61, count: 4096)) }
        #expect(fetchError(request(server.url, maxBytes: 1024))?.code == .oversized)
        #expect(fetchError(request(server.url, maxBytes: 4096)) == nil)
    }

    @Test func nobodyListeningIsANetworkError() throws {
        let server = try Server()
        let url = server.url
        server.responder.stop()
        #expect(fetchError(request(url))?.code == .network)
    }

    @Test func aCancelledDownloadStops() throws {
        let cancellation = HTTPDownload.Cancellation()
        cancellation.cancel()
        let server = try Server()
        server.respond { _ in HTTPResponse(status: .ok, body: "x\n") }
        var r = request(server.url)
        r.cancellation = cancellation
        #expect(fetchError(r)?.reason == "abandoned: the relay is stopping")
    }

    // MARK: The refresh: checks, swap, metadata

    func refresh(_ server: Server, pin: String? = nil, copy: String) -> ListRefresh.Outcome {
        ListRefresh.run(url: server.url, pin: pin, copy: copy, settings: .init(maxBytes: 1 << 20, timeoutSeconds: 5, caFile: nil, mark: 0))
    }

    @Test func badContentKeepsTheCopyInServiceAndIsRecorded() throws {
        let server = try Server()
        let copy = directory + "/cache/list.txt"
        server.respond { _ in HTTPResponse(status: .ok, body: "||good.lab.test^\n") }
        #expect(refresh(server, copy: copy) == .updated(bytes: 17))
        let cases: [(String, [UInt8], String)] = [
            ("html", Array("\u{FEFF}\n  <!DOCTYPE html><html><body>log in</body></html>\n".utf8), "the server sent an HTML page"),
            ("binary", [0x7c, 0x7c, 0x61, 0x0a, 0x62, 0x00, 0x0a], "not a text list (a NUL byte on line 2)"),
            ("empty", [], "the server sent an empty list"),
        ]
        for (name, bytes, reason) in cases {
            server.respond { _ in HTTPResponse(status: .ok, contentType: "text/plain", bytes: bytes) }
            guard case .failed(let error) = refresh(server, copy: copy) else { Issue.record("\(name): not refused"); continue }
            #expect(error.code == .content && error.reason.contains(reason), "\(name): \(error)")
            #expect(try String(contentsOfFile: copy, encoding: .utf8) == "||good.lab.test^\n", "\(name)")
            let meta = CachedCopy.read(copy: copy, url: server.url)
            #expect(meta?.lastError?.contains(reason) == true && meta?.bytes == 17, "\(name)")
            #expect(FileManager.default.fileExists(atPath: copy + ".download") == false)
        }
        #expect(CachedCopy.read(copy: copy, url: server.url)?.failures == 3)
    }

    @Test func aPinnedHashRefusesOtherContent() throws {
        let server = try Server()
        let copy = directory + "/list.txt"
        server.respond { _ in HTTPResponse(status: .ok, body: "||pinned.lab.test^\n") }
        guard case .failed(let error) = refresh(server, pin: String(repeating: "0", count: 64), copy: copy) else { Issue.record("accepted"); return }
        #expect(error.code == .content && error.reason.contains("not the pinned"))
        #expect(!FileManager.default.fileExists(atPath: copy))
    }

    @Test func theSameBytesAgainAreUnchangedAndAPreviousCopyCanComeBack() throws {
        let server = try Server()
        let copy = directory + "/list.txt"
        let version = Server.State()
        version.seen.withLock { $0 = ["1"] }
        server.respond { _ in HTTPResponse(status: .ok, body: "||v\(version.seen.withLock { $0[0] }).lab.test^\n") }
        #expect(refresh(server, copy: copy) == .updated(bytes: 15))
        #expect(refresh(server, copy: copy) == .unchanged)
        // Edited on disk: no longer the copy downloaded, so the same bytes are put back.
        try "edited\n".write(toFile: copy, atomically: false, encoding: .utf8)
        #expect(CachedCopy.read(copy: copy, url: server.url)?.describes(copy: copy) == false)
        #expect(refresh(server, copy: copy) == .updated(bytes: 15))
        #expect(CachedCopy.read(copy: copy, url: server.url)?.describes(copy: copy) == true)
        version.seen.withLock { $0 = ["2"] }
        #expect(refresh(server, copy: copy) == .updated(bytes: 15))
        #expect(try String(contentsOfFile: copy + ".previous", encoding: .utf8) == "||v1.lab.test^\n")
        ListRefresh.restorePrevious(copy: copy, url: server.url, reason: "no rule could be read")
        #expect(try String(contentsOfFile: copy, encoding: .utf8) == "||v1.lab.test^\n")
        let meta = CachedCopy.read(copy: copy, url: server.url)
        #expect(meta?.etag == nil && meta?.sha256 == nil && meta?.lastError == "content: no rule could be read")
    }

    @Test func metadataRoundTripsAndDamageOnlyLosesValidators() throws {
        let copy = directory + "/m.txt"
        var meta = CachedCopy(url: "https://h.test/a")
        meta.etag = "\"x\""
        meta.lastModified = "Tue, 01 Dec 2026 10:00:00 GMT"
        meta.confirmed = 100
        meta.bytes = 5
        meta.failures = 2
        try meta.write(copy: copy)
        #expect(CachedCopy.read(copy: copy, url: "https://h.test/a") == meta)
        #expect(CachedCopy.read(copy: copy, url: "https://h.test/other") == nil)
        try Data("url https://h.test/a\nconfirmed banana\n\u{0}\u{1}garbage\nbytes\netag \"y\"\n".utf8).write(to: URL(fileURLWithPath: CachedCopy.metadataPath(of: copy)))
        let damaged = CachedCopy.read(copy: copy, url: "https://h.test/a")
        #expect(damaged?.confirmed == nil && damaged?.etag == "\"y\"" && damaged?.bytes == 0)
    }
}
