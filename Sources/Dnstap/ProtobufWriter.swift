/// Protocol Buffers wire encoding (varints, tags, length-delimited and fixed32 fields) into a
/// caller's buffer, bounded: a write past the end sets `overflowed` and writes nothing more, so
/// a frame that does not fit is refused rather than cut. With no buffer it only counts, which
/// is how a nested message learns its length before it is written (two passes, no allocation).
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

    mutating func varintField(_ field: UInt64, _ value: UInt64) {
        tag(field, .varint)
        varint(value)
    }

    mutating func fixed32Field(_ field: UInt64, _ value: UInt32) {
        tag(field, .fixed32)
        for shift in stride(from: 0, to: 32, by: 8) { byte(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    mutating func bytesField(_ field: UInt64, _ bytes: UnsafeRawBufferPointer) {
        tag(field, .lengthDelimited)
        varint(UInt64(bytes.count))
        guard count + bytes.count <= capacity else { overflowed = true; return }
        if let base, let source = bytes.baseAddress, !bytes.isEmpty { (base + count).copyMemory(from: source, byteCount: bytes.count) }
        count += bytes.count
    }

    mutating func bytesField(_ field: UInt64, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { bytesField(field, $0) }
    }

    /// A nested message: its length (counted by running `body` on a counting writer first), then
    /// its fields.
    mutating func messageField(_ field: UInt64, _ body: (inout ProtobufWriter) -> Void) {
        var counter = ProtobufWriter()
        body(&counter)
        tag(field, .lengthDelimited)
        varint(UInt64(counter.count))
        body(&self)
    }
}
