/// A set of bytes as four 64-bit words.
struct ByteSet: Equatable {
    var words: [UInt64] = [0, 0, 0, 0]

    static var all: ByteSet { ByteSet(words: [.max, .max, .max, .max]) }

    static func single(_ b: UInt8) -> ByteSet {
        var s = ByteSet()
        s.insert(b)
        return s
    }

    static func range(_ low: UInt8, _ high: UInt8) -> ByteSet {
        var s = ByteSet()
        for b in low...high { s.insert(b) }
        return s
    }

    /// A literal byte, both cases for ASCII letters.
    static func literal(_ b: UInt8) -> ByteSet { single(b).caseFolded }

    static var word: ByteSet {
        var s = range(0x30, 0x39)
        s.formUnion(range(0x41, 0x5a))
        s.formUnion(range(0x61, 0x7a))
        s.insert(0x5f)
        return s
    }

    static var space: ByteSet {
        var s = ByteSet()
        for b: UInt8 in [0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d] { s.insert(b) }
        return s
    }

    mutating func insert(_ b: UInt8) { words[Int(b >> 6)] |= 1 << UInt64(b & 63) }
    func contains(_ b: UInt8) -> Bool { words[Int(b >> 6)] & (1 << UInt64(b & 63)) != 0 }
    mutating func formUnion(_ other: ByteSet) { for i in 0..<4 { words[i] |= other.words[i] } }
    func subtracting(_ other: ByteSet) -> ByteSet { ByteSet(words: (0..<4).map { words[$0] & ~other.words[$0] }) }

    /// With the other case of every ASCII letter in it too.
    var caseFolded: ByteSet {
        var s = self
        for b in UInt8(0x41)...UInt8(0x5a) where contains(b) || contains(b | 0x20) {
            s.insert(b)
            s.insert(b | 0x20)
        }
        return s
    }

    /// The one byte in the set, if it holds exactly one (or one letter in both cases).
    var onlyMember: UInt8? {
        var found: [UInt8] = []
        for b in 0...255 where contains(UInt8(b)) {
            found.append(UInt8(b))
            if found.count > 2 { return nil }
        }
        if found.count == 1 { return found[0] }
        if found.count == 2, found[0] | 0x20 == found[1], found[1] >= 0x61, found[1] <= 0x7a { return found[1] }
        return nil
    }
}
