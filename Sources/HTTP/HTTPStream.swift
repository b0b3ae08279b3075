/// What a handler answers: one response, or a stream that stays open (Server-Sent Events).
public enum HTTPReply: Sendable {
    case response(HTTPResponse)
    case stream(HTTPStream)
}

/// A response without an end, written as its source has something (Server-Sent Events): the
/// responder asks `next` on every turn of its loop (at least four times a second) while the
/// peer keeps up, and closes the connection when the source says it is finished, the peer goes
/// away, or the peer falls more than `HTTPResponder.Limits.maxStreamBacklog` bytes behind.
public final class HTTPStream: @unchecked Sendable {
    public enum Step {
        /// Bytes to send now.
        case bytes([UInt8])
        /// Nothing yet.
        case idle
        /// The stream ends; the connection closes.
        case finished
    }

    public let contentType: String
    public let fields: [(name: String, value: String)]
    /// Runs on the responder's thread only.
    public let next: (_ now: UInt64) -> Step

    public init(contentType: String = "text/event-stream; charset=utf-8", fields: [(name: String, value: String)] = [],
                next: @escaping (_ now: UInt64) -> Step) {
        self.contentType = contentType
        self.fields = fields
        self.next = next
    }

    /// The status line and headers that open the stream.
    var head: [UInt8] {
        var head = "HTTP/1.1 200 OK\r\nContent-Type: \(contentType)\r\nCache-Control: no-store\r\n"
        for field in fields { head += "\(field.name): \(field.value)\r\n" }
        head += "Connection: close\r\n\r\n"
        return Array(head.utf8)
    }
}
