import Glibc
import Testing
@testable import LinuxNet
import RelayCore

/// Round trips through the writer and the parser (the writer plays the kernel), and bad buffers.
@Suite struct ControlMessageTests {
    private func withControlBuffer<R>(_ size: Int = 256, _ body: (UnsafeMutableRawBufferPointer) -> R) -> R {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        defer { raw.deallocate() }
        return body(UnsafeMutableRawBufferPointer(start: raw, count: size))
    }

    @Test(arguments: ["10.53.2.53:53", "10.53.3.53:53", "[fd53:2::53]:53", "[fd53:3::53]:5353"])
    func originalDestinationRoundTrip(text: String) throws {
        let endpoint = try #require(Endpoint(parsing: text, defaultPort: 53))
        withControlBuffer { buffer in
            var writer = ControlMessageWriter(buffer: buffer)
            let appended = writer.appendOriginalDestination(endpoint)
            #expect(appended)
            let messages = ControlMessages(control: UnsafeRawBufferPointer(rebasing: buffer[0..<writer.length]))
            #expect(messages.originalDestination == endpoint)
            #expect(Array(messages).count == 1)
        }
    }

    @Test func severalMessagesKeepTheirOrder() {
        withControlBuffer { buffer in
            var writer = ControlMessageWriter(buffer: buffer)
            var ttl: Int32 = 64
            let first = withUnsafeBytes(of: &ttl) { writer.append(level: SOL_IP, type: IP_TTL, payload: $0) }
            let second = writer.appendOriginalDestination(Endpoint(address: IPAddress("10.53.2.53")!, port: 53))
            #expect(first && second)
            let messages = Array(ControlMessages(control: UnsafeRawBufferPointer(rebasing: buffer[0..<writer.length])))
            #expect(messages.map(\.type) == [IP_TTL, IP_ORIGDSTADDR])
            #expect(messages[0].data.load(as: Int32.self) == 64)
        }
    }

    @Test func writerRefusesWhatDoesNotFit() {
        withControlBuffer(24) { buffer in
            var writer = ControlMessageWriter(buffer: buffer)
            let appended = writer.appendOriginalDestination(Endpoint(address: IPAddress("fd53::1")!, port: 53))
            #expect(!appended)
            #expect(writer.length == 0)
        }
    }

    @Test func emptyAndShortBuffersHaveNoMessages() {
        withControlBuffer { buffer in
            #expect(Array(ControlMessages(control: UnsafeRawBufferPointer(rebasing: buffer[0..<0]))).isEmpty)
            #expect(Array(ControlMessages(control: UnsafeRawBufferPointer(rebasing: buffer[0..<8]))).isEmpty)
        }
    }

    /// A cmsg_len that claims more than the buffer holds ends the walk instead of reading past it.
    @Test func lyingLengthStopsTheWalk() {
        withControlBuffer { buffer in
            var writer = ControlMessageWriter(buffer: buffer)
            _ = writer.appendOriginalDestination(Endpoint(address: IPAddress("10.53.2.53")!, port: 53))
            buffer.baseAddress!.assumingMemoryBound(to: cmsghdr.self).pointee.cmsg_len = 4000
            let messages = ControlMessages(control: UnsafeRawBufferPointer(rebasing: buffer[0..<writer.length]))
            #expect(messages.originalDestination == nil)
        }
    }

    /// A message of another family where ORIGDSTADDR should be: no endpoint, no crash.
    @Test func wrongPayloadIsNoEndpoint() {
        withControlBuffer { buffer in
            var writer = ControlMessageWriter(buffer: buffer)
            let junk: [UInt8] = [0xff, 0xff, 1, 2]
            let appended = junk.withUnsafeBytes { writer.append(level: SOL_IP, type: IP_ORIGDSTADDR, payload: $0) }
            #expect(appended)
            let messages = ControlMessages(control: UnsafeRawBufferPointer(rebasing: buffer[0..<writer.length]))
            #expect(messages.originalDestination == nil)
        }
    }
}
