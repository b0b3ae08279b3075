import HTTP

/// An HTTP request arriving in pieces (the reads), parsed after each one as the responder does:
/// the verdict on any prefix must be incomplete, a request, or a refusal, and a request once
/// seen must stay the same request as more bytes arrive. What the dashboard then reads of a
/// request (cookies, the query string, a form body) is read too.
enum HTTPHeadTarget {
    @Sendable static func run(_ data: UnsafeRawBufferPointer) {
        var received: [UInt8] = []
        var first: HTTPRequestHead.Parse?
        for read in Pieces(data) {
            received += read
            let verdict = received.withUnsafeBytes { HTTPRequestHead.parse($0) }
            if case .request(let head) = verdict {
                precondition(head.path.hasPrefix("/") && head.path.utf8.count <= HTTPRequestHead.maxLineLength)
                precondition(head.fields.count <= HTTPRequestHead.maxFields && head.length <= received.count)
                _ = head.cookie("tproxy_relay_session")
                _ = head.queryItem("name")
                _ = HTTPForm.decode(String(decoding: received[head.length...], as: UTF8.self))
            }
            if let first, first != .incomplete {
                precondition(verdict == first, "a decided head changed with more bytes")
            } else {
                first = verdict
            }
            if received.count > 2 * HTTPRequestHead.maxHeadLength { return }
        }
    }
}
