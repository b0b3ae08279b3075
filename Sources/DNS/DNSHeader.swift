/// Reads and writes the 12-byte DNS header (RFC 1035 §4.1.1) directly in a wire buffer.
///
/// The relay touches headers on every datagram, so this works in place on raw bytes: no copies,
/// no allocation. Every accessor assumes the caller checked `DNSHeader.size` bytes are present.
public enum DNSHeader {
    public static let size = 12

    @inline(__always)
    static func u16(_ p: UnsafeRawPointer, _ offset: Int) -> UInt16 {
        UInt16(p.load(fromByteOffset: offset, as: UInt8.self)) << 8 | UInt16(p.load(fromByteOffset: offset + 1, as: UInt8.self))
    }

    @inline(__always)
    static func setU16(_ p: UnsafeMutableRawPointer, _ offset: Int, _ value: UInt16) {
        p.storeBytes(of: UInt8(value >> 8), toByteOffset: offset, as: UInt8.self)
        p.storeBytes(of: UInt8(value & 0xff), toByteOffset: offset + 1, as: UInt8.self)
    }

    @inline(__always) public static func id(_ p: UnsafeRawPointer) -> UInt16 { u16(p, 0) }
    @inline(__always) public static func setID(_ p: UnsafeMutableRawPointer, _ id: UInt16) { setU16(p, 0, id) }
    @inline(__always) public static func flags(_ p: UnsafeRawPointer) -> UInt16 { u16(p, 2) }
    @inline(__always) public static func setFlags(_ p: UnsafeMutableRawPointer, _ flags: UInt16) { setU16(p, 2, flags) }
    @inline(__always) public static func questionCount(_ p: UnsafeRawPointer) -> UInt16 { u16(p, 4) }
    @inline(__always) public static func answerCount(_ p: UnsafeRawPointer) -> UInt16 { u16(p, 6) }
    @inline(__always) public static func authorityCount(_ p: UnsafeRawPointer) -> UInt16 { u16(p, 8) }
    @inline(__always) public static func additionalCount(_ p: UnsafeRawPointer) -> UInt16 { u16(p, 10) }

    /// Sets the four section counts.
    @inline(__always)
    public static func setCounts(_ p: UnsafeMutableRawPointer, question: UInt16, answer: UInt16, authority: UInt16, additional: UInt16) {
        setU16(p, 4, question)
        setU16(p, 6, answer)
        setU16(p, 8, authority)
        setU16(p, 10, additional)
    }

    /// QR: the message is a response.
    public static let responseFlag: UInt16 = 0x8000
    /// TC: the message was truncated.
    public static let truncatedFlag: UInt16 = 0x0200
    /// RD: recursion desired.
    public static let recursionDesiredFlag: UInt16 = 0x0100
    /// RA: recursion available.
    public static let recursionAvailableFlag: UInt16 = 0x0080
    /// CD: checking disabled (DNSSEC).
    public static let checkingDisabledFlag: UInt16 = 0x0010
    /// AA: authoritative answer.
    public static let authoritativeFlag: UInt16 = 0x0400
    /// The opcode bits.
    public static let opcodeMask: UInt16 = 0x7800
    /// The RCODE bits.
    public static let rcodeMask: UInt16 = 0x000f

    @inline(__always)
    public static func isResponse(_ p: UnsafeRawPointer) -> Bool { flags(p) & responseFlag != 0 }
    @inline(__always)
    public static func rcode(_ p: UnsafeRawPointer) -> ResponseCode { ResponseCode(rawValue: flags(p) & rcodeMask) }
}

/// A DNS RCODE (the header's four bits).
public struct ResponseCode: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let noError = ResponseCode(rawValue: 0)
    public static let formatError = ResponseCode(rawValue: 1)
    public static let serverFailure = ResponseCode(rawValue: 2)
    public static let nameError = ResponseCode(rawValue: 3)
    public static let notImplemented = ResponseCode(rawValue: 4)
    public static let refused = ResponseCode(rawValue: 5)

    public var description: String {
        switch rawValue {
        case 0: return "NOERROR"
        case 1: return "FORMERR"
        case 2: return "SERVFAIL"
        case 3: return "NXDOMAIN"
        case 4: return "NOTIMP"
        case 5: return "REFUSED"
        default: return "RCODE\(rawValue)"
        }
    }
}
