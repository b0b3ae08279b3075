import Testing
@testable import Dnstap

/// The hand-written protobuf writer: a nested message is written once and its length fixed up
/// afterwards, at each length the varint can take (1, 2 and 3 bytes), and a buffer too small is
/// refused rather than cut.
@Suite struct ProtobufWriterTests {
    static func varint(_ value: Int) -> [UInt8] {
        var v = value, out: [UInt8] = []
        while v >= 0x80 { out.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        return out + [UInt8(v)]
    }

    @Test(arguments: [0, 5, 126, 127, 200, 16_370, 16_400, 70_000])
    func nestedLengthsAtEveryVarintSize(payload: Int) {
        let inner = (0..<payload).map { UInt8(truncatingIfNeeded: $0) }
        var buffer = [UInt8](repeating: 0xee, count: payload + 64)
        let (count, overflowed) = buffer.withUnsafeMutableBytes { raw in
            var w = ProtobufWriter(raw)
            w.varintField(1, 300)
            w.messageField(14) { m in
                m.varintField(1, 7)
                m.bytesField(4, inner)
            }
            w.fixed32Field(9, 0x0102_0304)
            return (w.count, w.overflowed)
        }
        let body: [UInt8] = [0x08, 7, 0x22] + Self.varint(payload) + inner
        let expected: [UInt8] = [0x08, 0xac, 0x02, 0x72] + Self.varint(body.count) + body + [0x4d, 4, 3, 2, 1]
        #expect(!overflowed)
        #expect(Array(buffer[0..<count]) == expected)
    }

    @Test func aBufferTooSmallForTheNestedBodyOverflows() {
        var buffer = [UInt8](repeating: 0, count: 20)
        let overflowed = buffer.withUnsafeMutableBytes { raw in
            var w = ProtobufWriter(raw)
            w.messageField(14) { $0.bytesField(1, [UInt8](repeating: 1, count: 30)) }
            return w.overflowed
        }
        #expect(overflowed)
    }
}
