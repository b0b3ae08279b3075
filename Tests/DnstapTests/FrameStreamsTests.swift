import Dnstap
import Testing

/// Control frames from a collector: the ones the handshake needs, and every way they can be wrong.
@Suite struct FrameStreamsTests {
    static func parse(_ bytes: [UInt8]) -> FrameStreams.Parsed { bytes.withUnsafeBytes { FrameStreams.parseControl($0) } }

    @Test func encodedFramesReadBack() {
        for control in [FrameStreams.Control(.accept, contentTypes: [FrameStreams.dnstapContentType]),
                        FrameStreams.Control(.finish), FrameStreams.Control(.ready, contentTypes: ["a", "b"])] {
            let bytes = FrameStreams.encode(control)
            #expect(Self.parse(bytes) == .control(control, length: bytes.count))
            // Every prefix is incomplete, never invalid.
            for end in 0..<bytes.count { #expect(Self.parse(Array(bytes[0..<end])) == .incomplete, "\(control.type) prefix \(end)") }
        }
        // The exact bytes of START with dnstap's content type (as fstrm writes them).
        #expect(FrameStreams.encode(.init(.start, contentTypes: ["protobuf:dnstap.Dnstap"])) ==
                [0, 0, 0, 0, 0, 0, 0, 0x22, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0x16] + Array("protobuf:dnstap.Dnstap".utf8))
    }

    @Test(arguments: [
        ([0, 0, 0, 5, 1, 2, 3, 4, 5], "a data frame where a control frame was expected"),
        ([0, 0, 0, 0, 0, 0, 0x10, 0], "a control frame of 4096 bytes (4...512)"),
        ([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], "a control frame of 4294967295 bytes (4...512)"),
        ([0, 0, 0, 0, 0, 0, 0, 2, 0, 0], "a control frame of 2 bytes (4...512)"),
        ([0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 9], "unknown control frame type 9"),
        ([0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 1], "a control field cut short"),
        ([0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0], "a control field of 256 bytes past the frame's end"),
    ] as [([UInt8], String)])
    func badControlFramesAreRefused(bytes: [UInt8], reason: String) {
        #expect(Self.parse(bytes) == .invalid(reason))
    }
}
