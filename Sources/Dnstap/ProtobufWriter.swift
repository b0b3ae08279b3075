/// Protocol Buffers wire encoding (varints, tags, length-delimited and fixed32 fields) into a
/// caller's buffer, bounded: a write past the end sets `overflowed` and writes nothing more, so
/// a frame that does not fit is refused rather than cut. With no buffer it only counts.
///
/// A nested message is written once: its body goes after room for a 3-byte length, and is moved
/// back over the room it did not need once its length is known (measured: counting the body in a
/// first pass doubled the encoder's time, and the nested Policy was walked four times).
struct ProtobufWriter {
    private let base: UnsafeMutableRawPointer?
    private let capacity: Int
    private(set) var count = 0
    private(set) var overflowed = false

    /// Writes into `buffer`.
    init(_ buffer: UnsafeMutableRawBufferPointer) {
        base = buffer.baseAddress
        capacity = buffer.count
    }

    /// Counts only.
    init() {
        base = nil
        capacity = .max
    }

    enum WireType: UInt64 { case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5 }

    @inline(__always)
    mutating func byte(_ value: UInt8) {
        guard count < capacity else { overflowed = true; return }
        base?.storeBytes(of: value, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    @inline(__always)
    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            byte(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        byte(UInt8(v))
    }

    @inline(__always)
    mutating func tag(_ field: UInt64, _ type: WireType) { varint(field << 3 | type.rawValue) }

    @inline(__always)
    mutating func varintField(_ field: UInt64, _ value: UInt64) {
        tag(field, .varint)
        varint(value)
    }

    @inline(__always)
    mutating func fixed32Field(_ field: UInt64, _ value: UInt32) {
        tag(field, .fixed32)
        guard count + 4 <= capacity else { overflowed = true; return }
        base?.storeBytes(of: value.littleEndian, toByteOffset: count, as: UInt32.self)
        count += 4
    }

    @inline(__always)
    mutating func bytesField(_ field: UInt64, _ bytes: UnsafeRawBufferPointer) {
        tag(field, .lengthDelimited)
        varint(UInt64(bytes.count))
        guard count + bytes.count <= capacity else { overflowed = true; return }
        if let base, let source = bytes.baseAddress, !bytes.isEmpty { (base + count).copyMemory(from: source, byteCount: bytes.count) }
        count += bytes.count
    }

    @inline(__always)
    mutating func bytesField(_ field: UInt64, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { bytesField(field, $0) }
    }

    /// Room left for a nested message's length: 3 bytes of varint hold up to 2 MiB.
    static let lengthRoom = 3

    /// A nested message: its tag, its length, then its fields as `body` writes them (once).
    @inline(__always)
    mutating func messageField(_ field: UInt64, _ body: (inout ProtobufWriter) -> Void) {
        tag(field, .lengthDelimited)
        let room = count
        count += Self.lengthRoom
        guard count <= capacity else { overflowed = true; return }
        let start = count
        body(&self)
        guard !overflowed else { return }
        let length = count - start
        guard length < 1 << 21 else { overflowed = true; return }
        let needed = length < 1 << 7 ? 1 : length < 1 << 14 ? 2 : 3
        if let base {
            if needed < Self.lengthRoom { (base + room + needed).copyMemory(from: base + start, byteCount: length) }
            var v = length
            for i in 0..<needed {
                base.storeBytes(of: UInt8(truncatingIfNeeded: v) | (i < needed - 1 ? 0x80 : 0), toByteOffset: room + i, as: UInt8.self)
                v >>= 7
            }
        }
        count = room + needed + length
    }
}
