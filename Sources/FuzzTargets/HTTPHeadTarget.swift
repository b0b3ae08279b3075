import HTTP

/// An HTTP request arriving in pieces (the reads), parsed after each one as the metrics
/// responder does: the verdict on any prefix must be incomplete, a request, or a refusal, and
/// a request once seen must stay the same request as more bytes arrive.
enum HTTPHeadTarget {
    @Sendable static func run(_ data: UnsafeRawBufferPointer) {
        var received: [UInt8] = []
        var first: HTTPRequestHead.Parse?
        for read in Pieces(data) {
            received += read
            let verdict = received.withUnsafeBytes { HTTPRequestHead.parse($0) }
            if case .request(let head) = verdict {
                precondition(head.path.hasPrefix("/") && head.path.utf8.count <= HTTPRequestHead.maxLineLength)
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
