import Testing
@testable import Relay
import RelayCore

/// The TCP framing on good and bad streams, fed in arbitrary pieces.
@Suite struct FrameReaderTests {
    static func feed(_ reader: FrameReader, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let space = reader.readableSpace()
            let n = min(space.count, bytes.count - offset)
            precondition(n > 0, "no space")
            space.baseAddress!.copyMemory(from: Array(bytes[offset..<offset + n]), byteCount: n)
            reader.commit(n)
            offset += n
        }
    }

    static func frames(_ reader: FrameReader) -> [[UInt8]] {
        var out: [[UInt8]] = []
        while case .message(let m) = reader.next() { out.append(Array(m)) }
        return out
    }

    static func framed(_ message: [UInt8]) -> [UInt8] { [UInt8(message.count >> 8), UInt8(message.count & 0xff)] + message }

    /// Reads the way the worker does: at most what fits and at most `chunk` bytes per read, then
    /// takes every complete message.
    @Test(arguments: [1, 2, 3, 7, 13, 1000])
    func messagesSurviveAnySplit(chunk: Int) {
        let messages = (0..<20).map { i in [UInt8](repeating: UInt8(i), count: 12 + i * 5) }
        let stream = messages.flatMap(Self.framed)
        let reader = FrameReader(maxMessage: 512)
        var got: [[UInt8]] = []
        var offset = 0
        while offset < stream.count {
            let space = reader.readableSpace()
            let n = min(space.count, chunk, stream.count - offset)
            space.baseAddress!.copyMemory(from: Array(stream[offset..<offset + n]), byteCount: n)
            reader.commit(n)
            offset += n
            got += Self.frames(reader)
        }
        #expect(got == messages)
        #expect(!reader.hasPartialMessage)
    }

    @Test func aPartialMessageWaits() {
        let reader = FrameReader(maxMessage: 512)
        Self.feed(reader, [0, 20] + [UInt8](repeating: 1, count: 10))
        guard case .incomplete = reader.next() else {
            Issue.record("expected incomplete")
            return
        }
        #expect(reader.hasPartialMessage)
    }

    @Test(arguments: [0, 1, 11, 513, 65535])
    func lengthsOutOfBoundsAreInvalid(length: Int) {
        let reader = FrameReader(maxMessage: 512)
        Self.feed(reader, [UInt8(length >> 8), UInt8(length & 0xff), 0, 0])
        guard case .invalid(let seen) = reader.next() else {
            Issue.record("expected invalid")
            return
        }
        #expect(seen == length)
    }

    @Test func aMaximalMessageFitsAfterCompaction() {
        let reader = FrameReader(maxMessage: 100)
        let small = [UInt8](repeating: 9, count: 12)
        let big = [UInt8](repeating: 7, count: 100)
        Self.feed(reader, Self.framed(small) + Array(Self.framed(big).prefix(50)))
        #expect(Self.frames(reader) == [small])
        Self.feed(reader, Array(Self.framed(big).dropFirst(50)))
        #expect(Self.frames(reader) == [big])
    }

    @Test func outputQueueFramesItsMessages() {
        let queue = OutputQueue()
        [UInt8](repeating: 5, count: 300).withUnsafeBytes { queue.append(message: $0) }
        #expect(queue.pending == 302)
        #expect(!queue.isEmpty)
    }

    @Test func connectionLimitsHoldInTotalAndPerClient() {
        let limits = ConnectionLimits(maxTotal: 3, maxPerClient: 2)
        let a = IPAddress("10.53.1.2")!
        let b = IPAddress("10.53.1.3")!
        #expect(limits.acquire(a))
        #expect(limits.acquire(a))
        #expect(!limits.acquire(a))  // per client
        #expect(limits.acquire(b))
        #expect(!limits.acquire(b))  // in total
        limits.release(a)
        #expect(limits.acquire(b))
        #expect(limits.open == 3)
    }

    @Test func slotsReuseFreedIndices() {
        final class Box {}
        var slots = Slots<Box>()
        let a = slots.insert(Box())
        let b = slots.insert(Box())
        slots.remove(a)
        #expect(slots[a] == nil)
        #expect(slots.insert(Box()) == a)
        #expect(slots.count == 2)
        #expect(slots.occupied == [a, b])
        slots.remove(b)
        slots.remove(b)
        #expect(slots.count == 1)
    }
}
