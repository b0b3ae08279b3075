/// The head of an HTTP/1.x request (request line and header fields), read from untrusted bytes
/// with hard bounds: the head must end within `maxHeadLength` bytes, the request line within
/// `maxLineLength`, at most `maxFields` header fields. Only GET, HEAD and POST are understood;
/// a body is announced by `Content-Length` alone (no chunked bodies: refused with 411).
public struct HTTPRequestHead: Equatable, Sendable {
    public enum Method: String, Sendable { case get = "GET", head = "HEAD", post = "POST" }

    public var method: Method
    /// The path without its query string (`/metrics?x=1` → `/metrics`).
    public var path: String
    /// What followed `?`, if anything.
    public var query: String?
    /// The header fields in order, names lower-cased, values trimmed.
    public var fields: [Field] = []
    /// Bytes of the head including its blank line: the body starts there.
    public var length = 0

    public struct Field: Equatable, Sendable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public static let maxHeadLength = 8192
    public static let maxLineLength = 2048
    public static let maxFields = 64

    /// What a buffer holding the start of a request comes to.
    public enum Parse: Equatable, Sendable {
        /// The head has not ended yet (and is still within bounds): read more.
        case incomplete
        case request(HTTPRequestHead)
        /// Answer with this status and close: 400 malformed, 405 a method other than
        /// GET/HEAD/POST, 411 a chunked body, 414 the request line too long, 431 the head too
        /// long or too many fields, 505 not HTTP/1.x.
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
        var headEnd = -1
        var i = lineEnd + 1
        while i < window.count {
            if window[i] == 0x0A && (window[i - 1] == 0x0A || (i >= 3 && window[i - 1] == 0x0D && window[i - 2] == 0x0A && window[i - 3] == 0x0D)) {
                headEnd = i + 1
                break
            }
            i += 1
        }
        guard headEnd > 0 else { return bytes.count >= maxHeadLength ? .refuse(.headerTooLarge) : .incomplete }
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
        var head: HTTPRequestHead
        if let mark = target.firstIndex(of: "?") {
            head = HTTPRequestHead(method: method, path: String(target[..<mark]), query: String(target[target.index(after: mark)...]))
        } else {
            head = HTTPRequestHead(method: method, path: target, query: nil)
        }
        head.length = headEnd
        switch parseFields(bytes[(lineEnd + 1)..<headEnd]) {
        case .fields(let fields): head.fields = fields
        case .refuse(let status): return .refuse(status)
        }
        if head.field("transfer-encoding") != nil { return .refuse(.lengthRequired) }
        if let length = head.field("content-length") {
            guard !length.isEmpty, length.count <= 12, length.allSatisfy(\.isASCIIDigit) else { return .refuse(.badRequest) }
            // Two Content-Length fields that disagree are a request smuggling attempt.
            if head.fields.filter({ $0.name == "content-length" }).contains(where: { $0.value != length }) { return .refuse(.badRequest) }
        }
        return .request(head)
    }

    /// The header lines between the request line and the blank line: `name: value`, names of
    /// token characters, values of visible ASCII, spaces and tabs (folded lines are refused).
    private enum Fields {
        case fields([Field])
        case refuse(HTTPStatus)
    }

    private static func parseFields(_ bytes: Slice<UnsafeRawBufferPointer>) -> Fields {
        var fields: [Field] = []
        for raw in bytes.split(separator: 0x0A, omittingEmptySubsequences: true) {
            var line = raw[...]
            if line.last == 0x0D { line = line.dropLast() }
            if line.isEmpty { continue }
            guard fields.count < maxFields else { return .refuse(.headerTooLarge) }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else { return .refuse(.badRequest) }
            let name = line[line.startIndex..<colon]
            guard name.allSatisfy(isTokenByte) else { return .refuse(.badRequest) }
            var value = line[(colon + 1)...]
            guard value.allSatisfy({ $0 == 0x09 || $0 == 0x20 || (0x21...0x7E).contains($0) }) else { return .refuse(.badRequest) }
            while let first = value.first, first == 0x20 || first == 0x09 { value = value.dropFirst() }
            while let last = value.last, last == 0x20 || last == 0x09 { value = value.dropLast() }
            fields.append(Field(name: String(decoding: name, as: UTF8.self).lowercased(), value: String(decoding: value, as: UTF8.self)))
        }
        return .fields(fields)
    }

    private static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(b)
        }
    }

    public init(method: Method, path: String, query: String? = nil, fields: [Field] = []) {
        self.method = method
        self.path = path
        self.query = query
        self.fields = fields
    }

    /// The first field of that (lower-case) name.
    public func field(_ name: String) -> String? { fields.first { $0.name == name }?.value }

    /// The announced body length (0 without `Content-Length`).
    public var contentLength: Int { field("content-length").flatMap { Int($0) } ?? 0 }

    /// A cookie's value from the `Cookie` fields (`a=1; b=2`), or nil.
    public func cookie(_ name: String) -> String? {
        for field in fields where field.name == "cookie" {
            for pair in field.value.split(separator: ";") {
                let trimmed = pair.drop { $0 == " " }
                guard let equals = trimmed.firstIndex(of: "=") else { continue }
                if trimmed[..<equals] == name { return String(trimmed[trimmed.index(after: equals)...]) }
            }
        }
        return nil
    }

    /// The value of one `name=value` pair of the query string (percent-decoded), or nil.
    public func queryItem(_ name: String) -> String? {
        guard let query else { return nil }
        return HTTPForm.decode(query)[name]
    }
}

private extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
