import HTTP
import Testing

/// The request head parser takes bytes from anyone who can reach the port: every way a head can
/// be short, long or wrong, as a table.
@Suite struct HTTPRequestHeadTests {
    static func parse(_ text: String) -> HTTPRequestHead.Parse {
        Array(text.utf8).withUnsafeBytes { HTTPRequestHead.parse($0) }
    }

    @Test(arguments: [
        ("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", HTTPRequestHead.Parse.request(.init(method: .get, path: "/metrics"))),
        ("HEAD /healthz HTTP/1.0\r\n\r\n", .request(.init(method: .head, path: "/healthz"))),
        ("GET /metrics?name[]=x HTTP/1.1\r\n\r\n", .request(.init(method: .get, path: "/metrics", query: "name[]=x"))),
        ("GET / HTTP/1.1\n\n", .request(.init(method: .get, path: "/"))),
        // Not yet complete: read more.
        ("", .incomplete),
        ("GET /metrics HTTP/1.1\r\n", .incomplete),
        ("GET /metrics HTTP/1.1\r\nHost: x\r\n", .incomplete),
        ("GET /met", .incomplete),
        // Wrong.
        ("POST /metrics HTTP/1.1\r\n\r\n", .refuse(.methodNotAllowed)),
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
    ] as [(String, HTTPRequestHead.Parse)])
    func table(text: String, expected: HTTPRequestHead.Parse) {
        #expect(Self.parse(text) == expected)
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
        #expect(Self.parse(fits) == .request(.init(method: .get, path: "/metrics")))
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
