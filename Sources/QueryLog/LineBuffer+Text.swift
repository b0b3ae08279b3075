/// The bounded pieces of a query-log line, written in place: decimal numbers and JSON strings.
/// Each asks for room once and writes through the pointer; no String, no table behind a lazy
/// global, no call per byte (the writer runs these for every answered query). Addresses are in
/// AddressText.
extension LineBuffer {
    /// `value` in decimal.
    @inline(__always)
    mutating func appendDecimal(_ value: UInt64) {
        let digits = Self.decimalDigits(value)
        let p = reserve(20)
        var v = value
        var i = digits
        repeat {
            i -= 1
            p[i] = UInt8(truncatingIfNeeded: 48 &+ v % 10)
            v /= 10
        } while i > 0
        advance(by: digits)
    }

    @inline(__always)
    static func decimalDigits(_ v: UInt64) -> Int {
        if v < 10 { return 1 }
        if v < 100 { return 2 }
        if v < 1000 { return 3 }
        if v < 10_000 { return 4 }
        if v < 100_000 { return 5 }
        if v < 1_000_000 { return 6 }
        var n = 7
        var rest = v / 10_000_000
        while rest > 0 { n += 1; rest /= 10 }
        return n
    }

    /// A JSON string from raw bytes off the wire (a name may hold any byte): printable ASCII as
    /// is, quotes and backslashes escaped, anything else as \u00XX.
    mutating func appendJSONString(wire bytes: UnsafeRawBufferPointer) {
        if !Self.needsEscaping(bytes), let source = bytes.baseAddress {
            // The usual name: printable ASCII only, copied whole.
            let p = reserve(bytes.count + 2)
            p[0] = UInt8(ascii: "\"")
            Self.copy(source, to: UnsafeMutableRawPointer(p + 1), count: bytes.count)
            p[bytes.count + 1] = UInt8(ascii: "\"")
            advance(by: bytes.count + 2)
            return
        }
        let p = reserve(bytes.count * 6 + 2)
        p[0] = UInt8(ascii: "\"")
        var n = 1
        for b in bytes {
            if b >= 0x20 && b < 0x7f && b != UInt8(ascii: "\"") && b != UInt8(ascii: "\\") {
                p[n] = b
                n += 1
            } else if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
                p[n] = UInt8(ascii: "\\")
                p[n + 1] = b
                n += 2
            } else {
                n += Self.writeUnicodeEscape(b, at: p + n)
            }
        }
        p[n] = UInt8(ascii: "\"")
        advance(by: n + 1)
    }

    /// A JSON string from UTF-8 text (file paths, rule texts): quotes, backslashes and control
    /// characters escaped, everything else as is.
    mutating func appendJSONString(utf8 bytes: UnsafeRawBufferPointer) {
        let p = reserve(bytes.count * 6 + 2)
        p[0] = UInt8(ascii: "\"")
        var n = 1
        for b in bytes {
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
                p[n] = UInt8(ascii: "\\")
                p[n + 1] = b
                n += 2
            } else if b < 0x20 {
                n += Self.writeUnicodeEscape(b, at: p + n)
            } else {
                p[n] = b
                n += 1
            }
        }
        p[n] = UInt8(ascii: "\"")
        advance(by: n + 1)
    }

    /// Whether any byte is outside printable ASCII or is a quote or a backslash: eight bytes at a
    /// time (SWAR; each test below is exact for "any byte of the word"), the last word
    /// overlapping the one before, so a name costs a few operations per word, not per byte.
    @inline(__always)
    static func needsEscaping(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let n = bytes.count
        guard n >= 8, let base = bytes.baseAddress else {
            for b in bytes where b < 0x20 || b >= 0x7f || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { return true }
            return false
        }
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        @inline(__always) func hasZero(_ v: UInt64) -> Bool { (v &- ones) & ~v & highs != 0 }
        @inline(__always) func escapes(_ x: UInt64) -> Bool {
            x & highs != 0                       // ≥ 0x80
                || (x &- ones &* 0x20) & ~x & highs != 0   // < 0x20
                || hasZero(x ^ (ones &* 0x22))   // "
                || hasZero(x ^ (ones &* 0x5c))   // \
                || hasZero(x ^ (ones &* 0x7f))   // DEL
        }
        var offset = 0
        while offset + 8 <= n {
            if escapes(base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) { return true }
            offset += 8
        }
        return offset < n && escapes(base.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self))
    }

    /// \u00XX for one byte; returns 6.
    @inline(__always)
    private static func writeUnicodeEscape(_ b: UInt8, at p: UnsafeMutablePointer<UInt8>) -> Int {
        p[0] = UInt8(ascii: "\\"); p[1] = UInt8(ascii: "u"); p[2] = UInt8(ascii: "0"); p[3] = UInt8(ascii: "0")
        let high = b >> 4, low = b & 0xf
        p[4] = high < 10 ? 48 + high : 87 + high
        p[5] = low < 10 ? 48 + low : 87 + low
        return 6
    }
}
