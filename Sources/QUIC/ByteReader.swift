/// Reads big-endian integers, QUIC variable-length integers and byte runs from untrusted bytes.
/// Every read is bounds-checked and returns nil past the end; nothing here traps on bad input.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var offset: Int

    init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }
    var isAtEnd: Bool { offset >= bytes.count }

    mutating func u8() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() -> UInt16? {
        guard remaining >= 2 else { return nil }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    mutating func u24() -> Int? {
        guard remaining >= 3 else { return nil }
        defer { offset += 3 }
        return Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
    }

    mutating func u32() -> UInt32? {
        guard remaining >= 4 else { return nil }
        defer { offset += 4 }
        var v: UInt32 = 0
        for i in 0..<4 { v = v << 8 | UInt32(bytes[offset + i]) }
        return v
    }

    /// A variable-length integer (RFC 9000 §16): the two top bits give its length, 1 to 8 bytes.
    mutating func varint() -> UInt64? {
        guard let first = bytes.count > offset ? bytes[offset] : nil else { return nil }
        let length = 1 << Int(first >> 6)
        guard remaining >= length else { return nil }
        var v = UInt64(first & 0x3f)
        for i in 1..<length { v = v << 8 | UInt64(bytes[offset + i]) }
        offset += length
        return v
    }

    /// The next `count` bytes, or nil when fewer remain.
    mutating func take(_ count: Int) -> UnsafeRawBufferPointer? {
        guard count >= 0, remaining >= count else { return nil }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
    }

    /// A run prefixed by its length in `prefix` bytes (1 or 2), as TLS writes vectors.
    mutating func vector(prefix: Int) -> UnsafeRawBufferPointer? {
        let length: Int?
        switch prefix {
        case 1: length = u8().map(Int.init)
        case 2: length = u16().map(Int.init)
        default: length = u24()
        }
        guard let length else { return nil }
        return take(length)
    }

    mutating func skip(_ count: Int) -> Bool { take(count) != nil }
}
