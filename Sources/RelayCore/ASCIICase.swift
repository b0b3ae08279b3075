/// ASCII letter case, folded the way DNS compares names (RFC 4343: A–Z and a–z only; every other
/// byte, UTF-8 included, is itself).
public enum ASCIICase {
    /// `byte` with A...Z folded to a...z.
    @inline(__always)
    public static func lowercased(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte }

    /// The eight bytes of `word` each folded as `lowercased(_:)` folds one, all at once: the
    /// bytes in A...Z are found with two carry-free additions on their low seven bits (no byte can
    /// carry into the next), and given their 0x20 bit. For hot loops over names (the answer
    /// cache's hash, names written out as text).
    @inline(__always)
    public static func lowercased(word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let low = word & (0x7f &* ones)
        let atLeastA = low &+ ((0x80 - 0x41) &* ones)  // high bit set where the low seven bits ≥ 0x41
        let pastZ = low &+ ((0x80 - 0x5b) &* ones)     // high bit set where they are ≥ 0x5b
        let upper = atLeastA & ~pastZ & ~word & (0x80 &* ones)  // and the byte's own high bit clear
        return word | (upper >> 2)
    }
}
