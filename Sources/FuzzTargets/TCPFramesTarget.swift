import Relay

/// A TCP byte stream (pieces of the input are the reads), split into messages.
enum TCPFramesTarget {
    @Sendable static func run(_ data: UnsafeRawBufferPointer) {
        let reader = FrameReader(maxMessage: 4096)
        for read in Pieces(data) {
            var rest = read
            while !rest.isEmpty {
                let space = reader.readableSpace()
                guard space.count > 0 else { return }
                let n = min(space.count, rest.count)
                space.baseAddress!.copyMemory(from: rest.baseAddress!, byteCount: n)
                reader.commit(n)
                rest = UnsafeRawBufferPointer(rebasing: rest[n...])
                while case .message(let message) = reader.next() {
                    precondition(message.count >= 12 && message.count <= 4096)
                }
            }
        }
    }
}
