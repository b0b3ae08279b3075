import Dnstap

/// What a dnstap collector sends back (ACCEPT, FINISH), arriving in pieces and parsed after each
/// one as the dnstap output does: the verdict on any prefix is incomplete, a control frame within
/// the 512-byte bound, or a refusal, and once decided it never changes as more bytes arrive.
enum FrameStreamsTarget {
    @Sendable static func run(_ data: UnsafeRawBufferPointer) {
        var received: [UInt8] = []
        var first: FrameStreams.Parsed?
        for read in Pieces(data) {
            received += read
            let verdict = received.withUnsafeBytes { FrameStreams.parseControl($0) }
            if case .control(let control, let length) = verdict {
                precondition(length >= 12 && length <= 8 + FrameStreams.maxControlLength && length <= received.count)
                precondition(control.contentTypes.reduce(0) { $0 + $1.utf8.count } <= FrameStreams.maxControlLength)
            }
            if let first, first != .incomplete {
                precondition(verdict == first, "a decided control frame changed with more bytes")
            } else {
                first = verdict
            }
            if received.count > 4 * FrameStreams.maxControlLength { return }
        }
    }
}
