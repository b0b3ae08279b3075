import Testing
import RelayCore

@Suite struct ASCIICaseTests {
    /// The eight-byte fold gives each byte what folding it alone gives, whatever its neighbours:
    /// every byte value in every lane, among random others.
    @Test func theWordFoldIsTheByteFold() {
        var random = SystemRandomNumberGenerator()
        for byte in 0...255 {
            #expect(ASCIICase.lowercased(UInt8(byte)) == (byte >= 65 && byte <= 90 ? UInt8(byte + 32) : UInt8(byte)))
            for lane in 0..<8 {
                for _ in 0..<4 {
                    let shift = UInt64(lane * 8)
                    let word = (random.next() as UInt64) & ~(0xff << shift) | UInt64(byte) << shift
                    let folded = ASCIICase.lowercased(word: word)
                    for k in 0..<8 {
                        let b = UInt8(truncatingIfNeeded: word >> UInt64(k * 8))
                        #expect(UInt8(truncatingIfNeeded: folded >> UInt64(k * 8)) == ASCIICase.lowercased(b), "byte \(byte) in lane \(lane), lane \(k)")
                    }
                }
            }
        }
        #expect(ASCIICase.lowercased(word: 0x5a41_4020_5b60_7a61) == 0x7a61_4020_5b60_7a61, "Z A @ space [ ` z a")
    }
}
