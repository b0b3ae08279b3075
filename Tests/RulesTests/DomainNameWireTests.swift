import Testing
import RelayCore
@testable import Rules

/// `DomainName.fromWire`, word at a time, against the byte-at-a-time reading it replaced: the same
/// text and the same refusals for names of every length, every byte value, and cut or hostile
/// messages.
@Suite struct DomainNameWireTests {
    /// The reading before (one byte at a time), kept as the reference. (It refused a text that
    /// filled the output exactly, one byte short of what it needed; now only a longer one is.)
    static func reference(_ message: [UInt8], outCount: Int) -> [UInt8]? {
        guard message.count > 12 else { return nil }
        var offset = 12
        var out: [UInt8] = []
        while offset < message.count {
            let labelLength = Int(message[offset])
            if labelLength == 0 { return out.count <= outCount ? out : nil }
            guard labelLength <= 63, offset + 1 + labelLength <= message.count else { return nil }
            if !out.isEmpty { out.append(UInt8(ascii: ".")) }
            for i in 0..<labelLength { out.append(ASCIICase.lowercased(message[offset + 1 + i])) }
            offset += 1 + labelLength
        }
        return nil
    }

    static func read(_ message: [UInt8], outCount: Int = 256) -> [UInt8]? {
        // Both buffers exactly as large as they claim, so that a read or write past them would
        // land outside the allocation.
        let m = UnsafeMutableRawBufferPointer.allocate(byteCount: message.count, alignment: 1)
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: outCount, alignment: 1)
        defer { m.deallocate(); out.deallocate() }
        m.copyBytes(from: message)
        return DomainName.fromWire(UnsafeRawBufferPointer(m), into: out).map { Array(out[0..<$0]) }
    }

    @Test func randomNamesReadAsBefore() {
        var random = SystemRandomNumberGenerator()
        for round in 0..<20_000 {
            var message = [UInt8](repeating: 0, count: 12)
            let labels = Int.random(in: 0...6, using: &random)
            for _ in 0..<labels {
                let length = round % 7 == 0 ? Int.random(in: 0...70, using: &random) : Int.random(in: 1...20, using: &random)
                message.append(UInt8(length))
                message += (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            }
            message.append(0)
            message += [0, 1, 0, 1]
            // Sometimes cut short, sometimes followed by more bytes, sometimes a small output.
            if round % 5 == 0 { message.removeLast(Int.random(in: 0...min(message.count, 40), using: &random)) }
            if round % 3 == 0 { message += (0..<Int.random(in: 0...16, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) } }
            let outCount = round % 11 == 0 ? Int.random(in: 0...40, using: &random) : 256
            #expect(Self.read(message, outCount: outCount) == Self.reference(message, outCount: outCount), "\(message)")
        }
    }

    @Test func edgeCases() {
        let header = [UInt8](repeating: 0, count: 12)
        #expect(Self.read(header + [0, 0, 1, 0, 1]) == [], "the root")
        #expect(Self.read(header) == nil, "no question")
        #expect(Self.read(header + [3, 0x57, 0x77]) == nil, "a label cut short")
        #expect(Self.read(header + [0xc0, 0x0c, 0, 1, 0, 1]) == nil, "a compression pointer")
        #expect(Self.read(header + [64] + [UInt8](repeating: 0x41, count: 64) + [0]) == nil, "a 64-byte label")
        // The longest name (four labels of 63, 61 bytes: 253 characters) in a 255-byte buffer.
        let longest = header + [63] + [UInt8](repeating: 0x41, count: 63) + [63] + [UInt8](repeating: 0x42, count: 63)
            + [63] + [UInt8](repeating: 0x43, count: 63) + [61] + [UInt8](repeating: 0x44, count: 61) + [0, 0, 1, 0, 1]
        let text = Self.read(longest, outCount: 255)
        #expect(text?.count == 253 && text?.first == 0x61 && text?.last == 0x64 && text?[63] == UInt8(ascii: "."))
        #expect(Self.read(longest, outCount: 253)?.count == 253, "exactly the buffer")
        #expect(Self.read(longest, outCount: 252) == nil, "too long for the buffer")
    }
}
