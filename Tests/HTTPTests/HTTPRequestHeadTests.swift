import HTTP
import Testing

/// The request head parser takes bytes from anyone who can reach the port: every way a head can
/// be short, long or wrong, as a table.
@Suite struct HTTPRequestHeadTests {
    static func parse(_ text: String) -> HTTPRequestHead.Parse {
        Array(text.utf8).withUnsafeBytes { HTTPRequestHead.parse($0) }
    }

    /// The parse with a head reduced to its method, path and query (what the tables name).
    static func line(_ text: String) -> HTTPRequestHead.Parse {
        guard case .request(let head) = parse(text) else { return parse(text) }
        return .request(HTTPRequestHead(method: head.method, path: head.path, query: head.query))
    }

    @Test(arguments: [
        ("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", HTTPRequestHead.Parse.request(.init(method: .get, path: "/metrics"))),
        ("HEAD /healthz HTTP/1.0\r\n\r\n", .request(.init(method: .head, path: "/healthz"))),
        ("GET /metrics?name[]=x HTTP/1.1\r\n\r\n", .request(.init(method: .get, path: "/metrics", query: "name[]=x"))),
        ("GET / HTTP/1.1\n\n", .request(.init(method: .get, path: "/"))),
        ("POST /api/login HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", .request(.init(method: .post, path: "/api/login"))),
        // Not yet complete: read more.
        ("", .incomplete),
        ("GET /metrics HTTP/1.1\r\n", .incomplete),
        ("GET /metrics HTTP/1.1\r\nHost: x\r\n", .incomplete),
        ("GET /met", .incomplete),
        // Wrong.
        ("PUT /metrics HTTP/1.1\r\n\r\n", .refuse(.methodNotAllowed)),
        ("DELETE /api/session HTTP/1.1\r\n\r\n", .refuse(.methodNotAllowed)),
        ("get /metrics HTTP/1.1\r\n\r\n", .refuse(.methodNotAllowed)),
        ("GET /metrics HTTP/2.0\r\n\r\n", .refuse(.versionNotSupported)),
        ("GET /metrics SPDY/1\r\n\r\n", .refuse(.badRequest)),
        ("GET metrics HTTP/1.1\r\n\r\n", .refuse(.badRequest)),
        ("GET  /metrics HTTP/1.1\r\n\r\n", .refuse(.badRequest)),
        ("GET /metrics\r\n\r\n", .refuse(.badRequest)),
        ("GET /met\u{7F}rics HTTP/1.1\r\n\r\n", .refuse(.badRequest)),
        ("GET /métrics HTTP/1.1\r\n\r\n", .refuse(.badRequest)),
        ("\r\n\r\n", .refuse(.badRequest)),
        ("\n\n", .refuse(.badRequest)),
        // Header fields: a name, a colon, a value of visible text.
        ("GET / HTTP/1.1\r\nNo colon here\r\n\r\n", .refuse(.badRequest)),
        ("GET / HTTP/1.1\r\n: empty name\r\n\r\n", .refuse(.badRequest)),
        ("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", .refuse(.badRequest)),
        ("GET / HTTP/1.1\r\nHost: x\r\n folded: continuation\r\n\r\n", .refuse(.badRequest)),
        ("GET / HTTP/1.1\r\nX: caf\u{E9}\r\n\r\n", .refuse(.badRequest)),
        ("GET / HTTP/1.1\r\nX: a\u{0}b\r\n\r\n", .refuse(.badRequest)),
        // Bodies: Content-Length only, digits only, never two that differ.
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", .refuse(.lengthRequired)),
        ("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", .refuse(.badRequest)),
        ("POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n", .refuse(.badRequest)),
        ("POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", .refuse(.badRequest)),
        ("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", .refuse(.badRequest)),
        ("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", .refuse(.badRequest)),
    ] as [(String, HTTPRequestHead.Parse)])
    func table(text: String, expected: HTTPRequestHead.Parse) {
        #expect(Self.line(text) == expected)
    }

    @Test func fieldsAreKeptLowerCasedAndTrimmedWithTheHeadLength() throws {
        let text = "POST /api/pause HTTP/1.1\r\nHost: relay\r\nX-CSRF-Token:  abc \r\nCookie: a=1; session=s3cr3t; b=2\r\nContent-Length: 7\r\n\r\nminutes"
        guard case .request(let head) = Self.parse(text) else { Issue.record("not parsed"); return }
        #expect(head.field("x-csrf-token") == "abc")
        #expect(head.field("host") == "relay")
        #expect(head.cookie("session") == "s3cr3t")
        #expect(head.cookie("b") == "2")
        #expect(head.cookie("sess") == nil)
        #expect(head.contentLength == 7)
        #expect(head.length == text.utf8.count - 7)
    }

    @Test func moreFieldsThanTheBoundAreRefused() {
        let many = "GET / HTTP/1.1\r\n" + String(repeating: "A: b\r\n", count: HTTPRequestHead.maxFields + 1) + "\r\n"
        #expect(Self.parse(many) == .refuse(.headerTooLarge))
        let enough = "GET / HTTP/1.1\r\n" + String(repeating: "A: b\r\n", count: HTTPRequestHead.maxFields) + "\r\n"
        #expect(Self.line(enough) == .request(.init(method: .get, path: "/")))
    }

    @Test(arguments: [
        ("a=1&b=two+words&c=%41%42", ["a": "1", "b": "two words", "c": "AB"]),
        ("a=1&a=2", ["a": "1"]),
        ("empty=&novalue", ["empty": "", "novalue": ""]),
        ("bad=%4&good=1", ["good": "1"]),
        ("bad=%zz&utf8=%C3%A9", ["utf8": "é"]),
        ("notutf8=%FF%FE&x=y", ["x": "y"]),
        ("", [:]),
    ] as [(String, [String: String])])
    func forms(text: String, expected: [String: String]) {
        #expect(HTTPForm.decode(text) == expected)
    }

    @Test func aRequestLineLongerThanTheBoundIsRefusedBeforeItEnds() {
        let line = "GET /" + String(repeating: "a", count: HTTPRequestHead.maxLineLength)
        #expect(Self.parse(line) == .refuse(.uriTooLong))
        #expect(Self.parse(line + " HTTP/1.1\r\n\r\n") == .refuse(.uriTooLong))
    }

    @Test func headersPastTheBoundAreRefused() {
        var text = "GET /metrics HTTP/1.1\r\n"
        while text.utf8.count < HTTPRequestHead.maxHeadLength { text += "X-Filler: " + String(repeating: "b", count: 100) + "\r\n" }
        #expect(Self.parse(text) == .refuse(.headerTooLarge))
        // A megabyte is looked at no further than the bound.
        #expect(Self.parse(text + String(repeating: "c", count: 1 << 20)) == .refuse(.headerTooLarge))
        // Just under the bound, complete: accepted.
        let fits = "GET /metrics HTTP/1.1\r\nX-Filler: " + String(repeating: "d", count: HTTPRequestHead.maxHeadLength - 40) + "\r\n\r\n"
        #expect(fits.utf8.count <= HTTPRequestHead.maxHeadLength)
        #expect(Self.line(fits) == .request(.init(method: .get, path: "/metrics")))
    }

    @Test func everyPrefixOfARequestIsIncompleteNeverAnError() {
        let request = "GET /healthz HTTP/1.1\r\nHost: relay\r\nUser-Agent: Prometheus/2.42\r\n\r\n"
        let bytes = Array(request.utf8)
        for end in 0..<bytes.count {
            let result = bytes[0..<end].withUnsafeBytes { HTTPRequestHead.parse($0) }
            #expect(result == .incomplete, "prefix of \(end) bytes")
        }
    }
}
