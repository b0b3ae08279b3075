/// The request line of an HTTP/1.x request, read from untrusted bytes with hard bounds: the
/// head (request line and headers) must end within `maxHeadLength` bytes, the request line
/// within `maxLineLength`; nothing past the head is looked at (the responders here take no
/// bodies). Header fields are skipped, not kept: a responder that answers GET and HEAD needs
/// only the method and the target.
public struct HTTPRequestHead: Equatable, Sendable {
    public enum Method: String, Sendable { case get = "GET", head = "HEAD" }

    public var method: Method
    /// The path without its query string (`/metrics?x=1` → `/metrics`).
    public var path: String
    /// What followed `?`, if anything.
    public var query: String?

    public static let maxHeadLength = 8192
    public static let maxLineLength = 2048

    /// What a buffer holding the start of a request comes to.
    public enum Parse: Equatable, Sendable {
        /// The head has not ended yet (and is still within bounds): read more.
        case incomplete
        case request(HTTPRequestHead)
        /// Answer with this status and close: 400 malformed, 405 a method other than GET/HEAD,
        /// 414 the request line too long, 431 the head too long, 505 not HTTP/1.x.
        case refuse(HTTPStatus)
    }

    /// Parses `bytes`, everything received so far on a connection.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Parse {
        let window = bytes[0..<min(bytes.count, maxHeadLength)]
        guard let lineEnd = window.firstIndex(of: 0x0A) else {
            return window.count > maxLineLength ? .refuse(.uriTooLong) : .incomplete
        }
        if lineEnd > maxLineLength { return .refuse(.uriTooLong) }
        // The end of the head: an empty line (CRLF CRLF, or LF LF from lenient clients).
        var headEnded = false
        var i = lineEnd + 1
        while i < window.count {
            if window[i] == 0x0A && (window[i - 1] == 0x0A || (i >= 3 && window[i - 1] == 0x0D && window[i - 2] == 0x0A && window[i - 3] == 0x0D)) {
                headEnded = true
                break
            }
            i += 1
        }
        guard headEnded else { return bytes.count >= maxHeadLength ? .refuse(.headerTooLarge) : .incomplete }
        var line = bytes[0..<lineEnd]
        if line.last == 0x0D { line = line.dropLast() }
        // Every byte of the request line is visible ASCII or a space.
        guard line.allSatisfy({ $0 == 0x20 || (0x21...0x7E).contains($0) }) else { return .refuse(.badRequest) }
        let parts = line.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else { return .refuse(.badRequest) }
        let version = String(decoding: parts[2], as: UTF8.self)
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else {
            return version.hasPrefix("HTTP/") ? .refuse(.versionNotSupported) : .refuse(.badRequest)
        }
        let target = String(decoding: parts[1], as: UTF8.self)
        guard target.hasPrefix("/") else { return .refuse(.badRequest) }
        guard let method = Method(rawValue: String(decoding: parts[0], as: UTF8.self)) else { return .refuse(.methodNotAllowed) }
        if let mark = target.firstIndex(of: "?") {
            return .request(HTTPRequestHead(method: method, path: String(target[..<mark]), query: String(target[target.index(after: mark)...])))
        }
        return .request(HTTPRequestHead(method: method, path: target, query: nil))
    }

    public init(method: Method, path: String, query: String? = nil) {
        self.method = method
        self.path = path
        self.query = query
    }
}
