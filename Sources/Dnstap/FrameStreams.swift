/// Frame Streams (the framing dnstap travels in; fstrm's protocol): data frames are a 32-bit
/// big-endian length and the payload; a control frame starts with a zero length (the escape),
/// then its own length, its type, and content-type fields. A bidirectional sender says READY,
/// waits for ACCEPT naming its content type, says START, sends data, and ends with STOP and waits
/// for FINISH; a file (unidirectional) holds START, data, STOP.
///
/// Control frames come from the collector, so the parser is bounded: a control frame longer than
/// 512 bytes, a field longer than the frame, or an unknown type is refused with a reason.
public enum FrameStreams {
    public static let dnstapContentType = "protobuf:dnstap.Dnstap"
    public static let maxControlLength = 512

    public enum ControlType: UInt32, Sendable {
        case accept = 1, start = 2, stop = 3, ready = 4, finish = 5
    }

    public struct Control: Equatable, Sendable {
        public var type: ControlType
        public var contentTypes: [String]

        public init(_ type: ControlType, contentTypes: [String] = []) {
            self.type = type
            self.contentTypes = contentTypes
        }
    }

    /// A control frame's bytes, escape included.
    public static func encode(_ control: Control) -> [UInt8] {
        var body = be32(control.type.rawValue)
        for contentType in control.contentTypes {
            body += be32(1) + be32(UInt32(contentType.utf8.count)) + Array(contentType.utf8)
        }
        return be32(0) + be32(UInt32(body.count)) + body
    }

    /// The 4-byte header of a data frame of `length` bytes.
    @inline(__always)
    public static func writeDataHeader(length: Int, to pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: UInt32(length).bigEndian, as: UInt32.self)
    }

    public enum Parsed: Equatable, Sendable {
        /// Not all of it has arrived: read more.
        case incomplete
        /// A control frame and how many bytes it took.
        case control(Control, length: Int)
        /// Not a control frame the protocol allows (the connection should be closed).
        case invalid(String)
    }

    /// Reads one control frame from the start of `bytes` (what a sender receives: ACCEPT, FINISH).
    public static func parseControl(_ bytes: UnsafeRawBufferPointer) -> Parsed {
        guard bytes.count >= 8 else { return .incomplete }
        guard readBE32(bytes, 0) == 0 else { return .invalid("a data frame where a control frame was expected") }
        let length = Int(readBE32(bytes, 4))
        guard length >= 4, length <= maxControlLength else { return .invalid("a control frame of \(length) bytes (4...\(maxControlLength))") }
        guard bytes.count >= 8 + length else { return .incomplete }
        guard let type = ControlType(rawValue: readBE32(bytes, 8)) else {
            return .invalid("unknown control frame type \(readBE32(bytes, 8))")
        }
        var contentTypes: [String] = []
        var offset = 12
        let end = 8 + length
        while offset < end {
            guard offset + 8 <= end else { return .invalid("a control field cut short") }
            let field = readBE32(bytes, offset)
            let size = Int(readBE32(bytes, offset + 4))
            guard size <= end - offset - 8 else { return .invalid("a control field of \(size) bytes past the frame's end") }
            if field == 1 {
                contentTypes.append(String(decoding: bytes[(offset + 8)..<(offset + 8 + size)], as: UTF8.self))
            }
            offset += 8 + size
        }
        return .control(Control(type, contentTypes: contentTypes), length: end)
    }

    static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    static func readBE32(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }
}
