import Glibc
import HTTP
import Synchronization
import LinuxNet
import RelayCore
import Testing

/// The responder over real loopback sockets: one response per connection, bounded requests and
/// bodies, deadlines, streams, and the oldest connection giving way when all slots are taken.
@Suite(.serialized) struct HTTPResponderTests {
    /// `/hello` answers with the method, `/echo` with the body, `/events` streams `events`
    /// numbered lines of `eventBytes` each, then ends.
    static func responder(_ limits: HTTPResponder.Limits = .init(), events: Int = 3, eventBytes: Int = 8, start: Bool = true) throws -> HTTPResponder {
        let responder = try HTTPResponder(name: "test-http", endpoints: [Endpoint(address: IPAddress("127.0.0.1")!, port: 0)], limits: limits) { request in
            let head = request.head
            switch head.path {
            case "/hello": return .response(HTTPResponse(status: .ok, body: "hello \(head.method.rawValue)\n"))
            case "/echo": return .response(HTTPResponse(status: .ok, contentType: "application/octet-stream", bytes: request.body).with("X-Peer", request.peer))
            case "/events":
                let sent = Mutex(0)
                return .stream(HTTPStream { _ in
                    sent.withLock { n in
                        guard n < events else { return .finished }
                        n += 1
                        return .bytes(Array("data: \(n) ".utf8) + [UInt8](repeating: 0x2E, count: eventBytes) + Array("\n\n".utf8))
                    }
                })
            default: return .response(.refusal(.notFound))
            }
        }
        if start { try responder.start() }
        return responder
    }

    /// A connected socket that never sends a byte (the handshake completes in the backlog).
    static func idleConnection(_ endpoint: Endpoint) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        _ = endpoint.withSockAddr { connect(fd, $0, $1) }
        return fd
    }

    /// A connected socket that has sent `request` and reads nothing yet.
    static func requesting(_ endpoint: Endpoint, _ request: [UInt8]) -> Int32 {
        let fd = idleConnection(endpoint)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        return fd
    }

    /// Reads until the server closes (nil on a reset or after `timeout` seconds).
    static func readAll(_ fd: Int32, timeout: Int = 3) -> String? {
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            if n < 0 { return nil }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
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

    /// The e2e flood test's failure, made certain: a scraper's request sits in the backlog behind
    /// nothing and in front of a burst of idle connections larger than every slot; one accept
    /// burst must not push it out before it is read.
    @Test func aRequestInTheBacklogIsAnsweredThoughABurstFollowsIt() throws {
        var limits = HTTPResponder.Limits()
        limits.maxConnections = 4
        let responder = try Self.responder(limits, start: false)
        defer { responder.stop() }
        let endpoint = responder.endpoints[0]
        let request = Array("GET /hello HTTP/1.1\r\n\r\n".utf8)
        let scraper = Self.requesting(endpoint, request)
        defer { close(scraper) }
        var idle: [Int32] = []
        for _ in 0..<20 { idle.append(Self.idleConnection(endpoint)) }
        defer { for fd in idle { close(fd) } }
        try responder.start()
        let answer = try #require(Self.readAll(scraper), "the scraper was reset")
        #expect(answer.hasPrefix("HTTP/1.1 200 OK"))
        // The burst is still taken in, turn by turn: idle ones give way to newer idle ones.
        let later = try #require(Self.exchange(endpoint, request))
        #expect(later.hasPrefix("HTTP/1.1 200 OK"))
        #expect(responder.counters.withLock { $0.accepted } >= 22)
        #expect(responder.counters.withLock { $0.displaced } >= 17)
    }

    /// A connection whose answer is still being written (a slow reader) gives way only after
    /// every connection that has sent nothing.
    @Test func aConnectionBeingAnsweredOutlastsIdleOnes() throws {
        var limits = HTTPResponder.Limits()
        limits.maxConnections = 3
        let responder = try HTTPResponder(name: "test-http", endpoints: [Endpoint(address: IPAddress("127.0.0.1")!, port: 0)], limits: limits) { _ in
            .response(HTTPResponse(status: .ok, contentType: "application/octet-stream", bytes: [UInt8](repeating: 0x61, count: 8 << 20)))
        }
        try responder.start()
        defer { responder.stop() }
        let endpoint = responder.endpoints[0]
        // The slow reader: asks, then reads nothing for now; 8 MiB cannot all be in the buffers.
        let slow = Self.requesting(endpoint, Array("GET /big HTTP/1.1\r\n\r\n".utf8))
        defer { close(slow) }
        // Ten idle connections, each once the one before is in, so each is accepted in a turn of
        // its own (in a single burst, even a slow reader gives way rather than stall accepting).
        var idle: [Int32] = []
        defer { for fd in idle { close(fd) } }
        for n in 1...11 {
            let deadline = SystemInfo.monotonicNanoseconds() + 3_000_000_000
            while responder.counters.withLock({ $0.accepted }) < n, SystemInfo.monotonicNanoseconds() < deadline { usleep(1_000) }
            if n <= 10 { idle.append(Self.idleConnection(endpoint)) }
        }
        #expect(responder.counters.withLock { $0.displaced } == 8)
        var received = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(slow, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(slow, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received += n
        }
        #expect(received > 8 << 20, "the slow reader got its whole answer")
    }

    @Test func aTakenPortIsReportedByName() throws {
        let first = try Self.responder()
        defer { first.stop() }
        #expect(throws: RelayError.self) {
            _ = try HTTPResponder(name: "metrics", endpoints: first.endpoints) { _ in .response(.refusal(.notFound)) }
        }
        do {
            _ = try HTTPResponder(name: "metrics", endpoints: first.endpoints) { _ in .response(.refusal(.notFound)) }
        } catch {
            #expect("\(error)".contains("metrics: cannot listen on \(first.endpoints[0])"))
        }
    }

    static func postLimits() -> HTTPResponder.Limits {
        var limits = HTTPResponder.Limits()
        limits.acceptsPost = true
        limits.maxBodyBytes = 1024
        limits.maxStreams = 2
        return limits
    }

    @Test func aPostBodyIsReadWholeEvenInPieces() throws {
        let responder = try Self.responder(Self.postLimits())
        defer { responder.stop() }
        let endpoint = responder.endpoints[0]
        let answer = try #require(Self.exchange(endpoint, Array("POST /echo HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world".utf8)))
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(answer.contains("X-Peer: 127.0.0.1\r\n"))
        #expect(answer.hasSuffix("\r\n\r\nhello world"))
        // The head, then the body in three pieces a moment apart.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        _ = endpoint.withSockAddr { connect(fd, $0, $1) }
        for piece in ["POST /echo HTTP/1.1\r\nContent-Length: 9\r\n\r\n", "abc", "def", "ghi"] {
            _ = Array(piece.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            usleep(50_000)
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        var out: [UInt8] = []
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        #expect(String(decoding: out, as: UTF8.self).hasSuffix("\r\n\r\nabcdefghi"))
    }

    @Test func aBodyOverTheBoundIsRefusedUnread() throws {
        let responder = try Self.responder(Self.postLimits())
        defer { responder.stop() }
        let answer = try #require(Self.exchange(responder.endpoints[0], Array("POST /echo HTTP/1.1\r\nContent-Length: 1025\r\n\r\n".utf8)))
        #expect(answer.hasPrefix("HTTP/1.1 413 "))
        // Without POST allowed, a POST is 405 whatever it carries.
        let plain = try Self.responder()
        defer { plain.stop() }
        let refused = try #require(Self.exchange(plain.endpoints[0], Array("POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi".utf8)))
        #expect(refused.hasPrefix("HTTP/1.1 405 "))
    }

    @Test func aStreamSendsItsEventsThenCloses() throws {
        let responder = try Self.responder(Self.postLimits())
        defer { responder.stop() }
        let answer = try #require(Self.exchange(responder.endpoints[0], Array("GET /events HTTP/1.1\r\n\r\n".utf8)))
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream"))
        #expect(!answer.contains("Content-Length"))
        #expect(answer.hasSuffix("data: 1 ........\n\ndata: 2 ........\n\ndata: 3 ........\n\n"))
        #expect(responder.counters.withLock { $0.streams } == 1)
    }

    @Test func streamsOutlastTheRequestTimeoutAndAreNeverDisplaced() throws {
        var limits = Self.postLimits()
        limits.requestTimeoutMilliseconds = 200
        limits.maxConnections = 3
        let responder = try Self.responder(limits, events: 1_000_000)
        defer { responder.stop() }
        let endpoint = responder.endpoints[0]
        let stream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(stream) }
        _ = endpoint.withSockAddr { connect(stream, $0, $1) }
        _ = Array("GET /events HTTP/1.1\r\n\r\n".utf8).withUnsafeBytes { send(stream, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        usleep(100_000)
        // Idle connections come and push each other out; the stream stays.
        var idle: [Int32] = []
        for _ in 0..<6 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            _ = endpoint.withSockAddr { connect(fd, $0, $1) }
            idle.append(fd)
        }
        defer { for fd in idle { close(fd) } }
        usleep(600_000)  // three request timeouts
        var buffer = [UInt8](repeating: 0, count: 65536)
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(stream, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var got = 0
        for _ in 0..<20 {
            let n = buffer.withUnsafeMutableBytes { recv(stream, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            got += n
            if got > 400 { break }
        }
        // The head and a dozen events, each a turn (250 ms) after the last: still coming after
        // three request timeouts and six displaced connections.
        #expect(got > 400)
        #expect(responder.counters.withLock { $0.timedOut } >= 1)
        // A third stream is one over the bound: 503.
        let second = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(second) }
        _ = endpoint.withSockAddr { connect(second, $0, $1) }
        _ = Array("GET /events HTTP/1.1\r\n\r\n".utf8).withUnsafeBytes { send(second, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        usleep(100_000)
        let third = try #require(Self.exchange(endpoint, Array("GET /events HTTP/1.1\r\n\r\n".utf8)))
        #expect(third.hasPrefix("HTTP/1.1 503 "))
    }

    @Test func aStreamWhoseReaderFallsBehindIsClosed() throws {
        var limits = Self.postLimits()
        limits.maxStreamBacklog = 4096
        let responder = try Self.responder(limits, events: 1_000_000, eventBytes: 1 << 20)
        defer { responder.stop() }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var small: Int32 = 4096
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        _ = responder.endpoints[0].withSockAddr { connect(fd, $0, $1) }
        _ = Array("GET /events HTTP/1.1\r\n\r\n".utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        // Never read: within a few turns the writer gives up on this reader.
        for _ in 0..<40 where responder.counters.withLock({ $0.streamsBehind }) == 0 { usleep(100_000) }
        #expect(responder.counters.withLock { $0.streamsBehind } == 1)
    }
}
