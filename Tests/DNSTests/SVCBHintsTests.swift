import DNS
import Testing

/// Address hints taken out of HTTPS/SVCB answers: the message is written again whole (names
/// after the record move, compression pointers with them) and still reads.
@Suite struct SVCBHintsTests {
    /// www.lab.test HTTPS: one HTTPS record (alpn h2, ipv4hint, ech, ipv6hint), then in the
    /// additional section an A record whose owner points at the answer's owner, and one whose
    /// owner points into the HTTPS record's target name (after the removed bytes).
    static func answer() -> [UInt8] {
        var m: [UInt8] = [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 2]
        m += [3] + Array("www".utf8) + [3] + Array("lab".utf8) + [4] + Array("test".utf8) + [0]  // offset 12
        m += [0, 65, 0, 1]
        var rdata: [UInt8] = [0, 1, 0]  // priority 1, target "." (the owner)
        rdata += [0, 1, 0, 3, 2] + Array("h2".utf8)
        rdata += [0, 4, 0, 4, 10, 53, 2, 80]
        rdata += [0, 5, 0, 2, 0xAB, 0xCD]
        rdata += [0, 6, 0, 16, 0xfd, 0x53, 0, 2] + [UInt8](repeating: 0, count: 11) + [0x80]
        m += [0xC0, 0x0C, 0, 65, 0, 1, 0, 0, 0, 60, UInt8(rdata.count >> 8), UInt8(rdata.count & 0xff)] + rdata
        let secondOwner = m.count
        m += [3] + Array("ns1".utf8) + [0xC0, 0x10]  // ns1.lab.test
        m += [0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 53, 2, 53]
        m += [3] + Array("ns2".utf8) + [0xC0, UInt8(secondOwner + 4)]  // ns2 + pointer to "lab.test" inside ns1's owner
        m += [0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 53, 2, 54]
        return m
    }

    static func params(_ message: [UInt8]) -> [UInt16] {
        // The HTTPS record follows the question (12 + 14 + 4); its RDATA after 12 bytes of RR header.
        let rdlength = Int(message[40]) << 8 | Int(message[41])
        let rdata = Array(message[42..<(42 + rdlength)])
        var keys: [UInt16] = []
        var offset = 3
        while offset + 4 <= rdata.count {
            keys.append(UInt16(rdata[offset]) << 8 | UInt16(rdata[offset + 1]))
            offset += 4 + (Int(rdata[offset + 2]) << 8 | Int(rdata[offset + 3]))
        }
        return keys
    }

    @Test func theIPv6HintGoesAndTheMessageStillReads() throws {
        var message = Self.answer()
        #expect(Self.params(message) == [1, 4, 5, 6])
        message += [UInt8](repeating: 0, count: 64)
        let length = try #require(message.withUnsafeMutableBytes { SVCBHints.strip(.ipv6, in: $0, length: Self.answer().count) })
        let out = Array(message[0..<length])
        #expect(length < Self.answer().count)
        #expect(Self.params(out) == [1, 4, 5])
        #expect(out[0...1] == [0x12, 0x34])
        // Whole and consistent: the same parser the relay checks upstream answers with.
        var copy = out + [UInt8](repeating: 0, count: 16)
        let questionEnd = 12 + 14 + 4
        #expect(copy.withUnsafeMutableBytes { AnswerCheck.check(UnsafeMutableRawBufferPointer(rebasing: $0[0..<length]), questionEnd: questionEnd, maxTTL: 86_400) })
        // The additional records kept their names (their pointers were redone).
        let text = String(decoding: out, as: UTF8.self)
        #expect(text.contains("ns1") && text.contains("ns2"))
    }

    @Test func bothHintsGoTheOtherParametersStay() throws {
        var message = Self.answer() + [UInt8](repeating: 0, count: 64)
        let length = try #require(message.withUnsafeMutableBytes { SVCBHints.strip([.ipv4, .ipv6], in: $0, length: Self.answer().count) })
        #expect(Self.params(Array(message[0..<length])) == [1, 5])
    }

    @Test func nothingToTakeOutLeavesTheBytesAlone() throws {
        var message = Self.answer()
        let original = message
        message.withUnsafeMutableBytes { buffer in
            // Strip hints from an answer with none: the length comes back unchanged, no rewrite.
            #expect(SVCBHints.strip([], in: buffer, length: original.count) == original.count)
        }
        #expect(message == original)
    }

    @Test func garbageIsRefusedNotRewritten() {
        var junk: [UInt8] = [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 5, 0, 0, 0, 0, 7, 1, 2]
        let result = junk.withUnsafeMutableBytes { SVCBHints.strip(.ipv4, in: $0, length: 15) }
        #expect(result == nil)
    }
}
