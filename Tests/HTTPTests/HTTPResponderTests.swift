import Glibc
import HTTP
import LinuxNet
import RelayCore
import Testing

/// The responder over real loopback sockets: one response per connection, bounded requests,
/// deadlines, and the oldest connection giving way when all slots are taken.
@Suite(.serialized) struct HTTPResponderTests {
    static func responder(_ limits: HTTPResponder.Limits = .init()) throws -> HTTPResponder {
        let responder = try HTTPResponder(name: "test-http", endpoints: [Endpoint(address: IPAddress("127.0.0.1")!, port: 0)], limits: limits) { head in
            head.path == "/hello" ? HTTPResponse(status: .ok, body: "hello \(head.method.rawValue)\n") : .refusal(.notFound)
        }
        try responder.start()
        return responder
    }

    /// A blocking client: connects, sends `request`, reads until the server closes.
    static func exchange(_ endpoint: Endpoint, _ request: [UInt8], timeout: Int = 3) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let connected = endpoint.withSockAddr { connect(fd, $0, $1) }
        guard connected == 0 else { return nil }
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func answersGetAndHeadThenCloses() throws {
        let responder = try Self.responder()
        defer { responder.stop() }
        let endpoint = responder.endpoints[0]
        let get = try #require(Self.exchange(endpoint, Array("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n".utf8)))
        #expect(get.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(get.contains("Content-Length: 10\r\n"))
        #expect(get.contains("Connection: close\r\n"))
        #expect(get.hasSuffix("\r\n\r\nhello GET\n"))
        let head = try #require(Self.exchange(endpoint, Array("HEAD /hello HTTP/1.1\r\n\r\n".utf8)))
        #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(head.hasSuffix("\r\n\r\n"))
        let missing = try #require(Self.exchange(endpoint, Array("GET /nope HTTP/1.1\r\n\r\n".utf8)))
        #expect(missing.hasPrefix("HTTP/1.1 404 Not Found\r\n"))
    }

    @Test func malformedAndOversizedRequestsAreRefusedAndTheServerGoesOn() throws {
        let responder = try Self.responder()
        defer { responder.stop() }
        let endpoint = responder.endpoints[0]
        let post = try #require(Self.exchange(endpoint, Array("POST /hello HTTP/1.1\r\n\r\n".utf8)))
        #expect(post.hasPrefix("HTTP/1.1 405 "))
        let huge = Array("GET /hello HTTP/1.1\r\nX: ".utf8) + [UInt8](repeating: 0x61, count: 1 << 20)
        let refused = Self.exchange(endpoint, huge) ?? ""
        // The server answers 431 and closes with the rest unread (the client may see a reset).
        #expect(refused.isEmpty || refused.hasPrefix("HTTP/1.1 431 "))
        let after = try #require(Self.exchange(endpoint, Array("GET /hello HTTP/1.1\r\n\r\n".utf8)))
        #expect(after.hasPrefix("HTTP/1.1 200 OK"))
        #expect(responder.counters.withLock { $0.refused } >= 1)
    }

    @Test func aSlowClientIsClosedAtItsDeadline() throws {
        var limits = HTTPResponder.Limits()
        limits.requestTimeoutMilliseconds = 300
        let responder = try Self.responder(limits)
        defer { responder.stop() }
        let started = SystemInfo.monotonicNanoseconds()
        // Half a request line, then nothing: the server gives up, the client sees the close.
        let answer = Self.exchange(responder.endpoints[0], Array("GET /hel".utf8))
        let waited = SystemInfo.monotonicNanoseconds() - started
        #expect(answer == "" || answer == nil)
        #expect(waited < 2_000_000_000)
        #expect(responder.counters.withLock { $0.timedOut } == 1)
    }

    @Test func whenEverySlotIsTakenTheOldestGivesWay() throws {
        var limits = HTTPResponder.Limits()
        limits.maxConnections = 4
        let responder = try Self.responder(limits)
        defer { responder.stop() }
        let endpoint = responder.endpoints[0]
        // Eight idle connections that never send a byte.
        var idle: [Int32] = []
        for _ in 0..<8 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            _ = endpoint.withSockAddr { connect(fd, $0, $1) }
            idle.append(fd)
        }
        defer { for fd in idle { close(fd) } }
        let answer = try #require(Self.exchange(endpoint, Array("GET /hello HTTP/1.1\r\n\r\n".utf8)))
        #expect(answer.hasPrefix("HTTP/1.1 200 OK"))
        #expect(responder.counters.withLock { $0.displaced } >= 5)
    }

    @Test func aTakenPortIsReportedByName() throws {
        let first = try Self.responder()
        defer { first.stop() }
        #expect(throws: RelayError.self) {
            _ = try HTTPResponder(name: "metrics", endpoints: first.endpoints) { _ in .refusal(.notFound) }
        }
        do {
            _ = try HTTPResponder(name: "metrics", endpoints: first.endpoints) { _ in .refusal(.notFound) }
        } catch {
            #expect("\(error)".contains("metrics: cannot listen on \(first.endpoints[0])"))
        }
    }
}
