/// Walks the frames of a decrypted Initial packet (RFC 9000 §12.4: only PADDING, PING, ACK,
/// CRYPTO and CONNECTION_CLOSE may appear there) and hands CRYPTO data to `crypto`.
enum InitialFrames {
    static func walk(_ payload: UnsafeRawBufferPointer, crypto: (UInt64, UnsafeRawBufferPointer) -> SNIFailure?) -> SNIFailure? {
        var r = ByteReader(payload)
        while !r.isAtEnd {
            guard let type = r.varint() else { return SNIFailure(.malformedFrame, "truncated frame type") }
            switch type {
            case 0x00, 0x01:  // PADDING, PING
                continue
            case 0x02, 0x03:  // ACK, ACK with ECN counts
                guard r.varint() != nil, r.varint() != nil, let count = r.varint(), r.varint() != nil,
                      count <= UInt64(r.remaining) else {
                    return SNIFailure(.malformedFrame, "truncated ACK frame")
                }
                for _ in 0..<count {
                    guard r.varint() != nil, r.varint() != nil else { return SNIFailure(.malformedFrame, "truncated ACK range") }
                }
                if type == 0x03 {
                    guard r.varint() != nil, r.varint() != nil, r.varint() != nil else {
                        return SNIFailure(.malformedFrame, "truncated ACK ECN counts")
                    }
                }
            case 0x06:  // CRYPTO
                guard let offset = r.varint(), let length = r.varint(), length <= UInt64(r.remaining),
                      let data = r.take(Int(length)) else {
                    return SNIFailure(.malformedFrame, "CRYPTO frame runs past the packet")
                }
                if let failure = crypto(offset, data) { return failure }
            case 0x1c:  // CONNECTION_CLOSE (transport)
                guard r.varint() != nil, r.varint() != nil, let length = r.varint(), length <= UInt64(r.remaining),
                      r.skip(Int(length)) else {
                    return SNIFailure(.malformedFrame, "truncated CONNECTION_CLOSE frame")
                }
            default:
                return SNIFailure(.malformedFrame, "frame type 0x\(String(type, radix: 16)) is not allowed in an Initial packet")
            }
        }
        return nil
    }
}
