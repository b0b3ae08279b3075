/// The statuses the responders here give.
public enum HTTPStatus: Int, Sendable {
    case ok = 200
    case noContent = 204
    case found = 302
    case seeOther = 303
    case notModified = 304
    case badRequest = 400
    case unauthorized = 401
    case forbidden = 403
    case notFound = 404
    case methodNotAllowed = 405
    case requestTimeout = 408
    case conflict = 409
    case lengthRequired = 411
    case payloadTooLarge = 413
    case uriTooLong = 414
    case unsupportedMediaType = 415
    case tooManyRequests = 429
    case headerTooLarge = 431
    case internalServerError = 500
    case serviceUnavailable = 503
    case versionNotSupported = 505

    public var reason: String {
        switch self {
        case .ok: return "OK"
        case .noContent: return "No Content"
        case .found: return "Found"
        case .seeOther: return "See Other"
        case .notModified: return "Not Modified"
        case .badRequest: return "Bad Request"
        case .unauthorized: return "Unauthorized"
        case .forbidden: return "Forbidden"
        case .notFound: return "Not Found"
        case .methodNotAllowed: return "Method Not Allowed"
        case .requestTimeout: return "Request Timeout"
        case .conflict: return "Conflict"
        case .lengthRequired: return "Length Required"
        case .payloadTooLarge: return "Payload Too Large"
        case .uriTooLong: return "URI Too Long"
        case .unsupportedMediaType: return "Unsupported Media Type"
        case .tooManyRequests: return "Too Many Requests"
        case .headerTooLarge: return "Request Header Fields Too Large"
        case .internalServerError: return "Internal Server Error"
        case .serviceUnavailable: return "Service Unavailable"
        case .versionNotSupported: return "HTTP Version Not Supported"
        }
    }
}

/// One complete response; the connection closes after it (`Connection: close`), so there is no
/// keep-alive state to track and no pipelining to get wrong.
public struct HTTPResponse: Sendable {
    public var status: HTTPStatus
    public var contentType: String
    public var body: [UInt8]
    /// Further header fields (`Set-Cookie`, `Location`, security policies); names and values
    /// are the caller's own text, never a client's.
    public var fields: [(name: String, value: String)] = []

    public init(status: HTTPStatus, contentType: String = "text/plain; charset=utf-8", body: String) {
        self.status = status
        self.contentType = contentType
        self.body = Array(body.utf8)
    }

    public init(status: HTTPStatus, contentType: String, bytes: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = bytes
    }

    /// A short plain-text refusal, e.g. for a malformed request.
    public static func refusal(_ status: HTTPStatus) -> HTTPResponse {
        HTTPResponse(status: status, body: "\(status.rawValue) \(status.reason)\n")
    }

    /// The same response with one more header field.
    public func with(_ name: String, _ value: String) -> HTTPResponse {
        var copy = self
        copy.fields.append((name, value))
        return copy
    }

    /// The bytes on the wire: status line, headers, and the body unless `headOnly` (HEAD).
    public func serialized(headOnly: Bool = false) -> [UInt8] {
        var head = "HTTP/1.1 \(status.rawValue) \(status.reason)\r\n"
        head += "Content-Type: \(contentType)\r\n"
        head += "Content-Length: \(body.count)\r\n"
        head += "Cache-Control: no-store\r\n"
        for field in fields { head += "\(field.name): \(field.value)\r\n" }
        head += "Connection: close\r\n\r\n"
        var bytes = Array(head.utf8)
        if !headOnly { bytes += body }
        return bytes
    }
}
