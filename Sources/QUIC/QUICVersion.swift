/// The QUIC versions whose Initial packets the relay can read: each fixes the salt that Initial
/// keys derive from, the HKDF labels and the long-header type bits of an Initial packet.
public struct QUICVersion: Equatable, Sendable, CustomStringConvertible {
    public let number: UInt32
    let salt: [UInt8]
    let keyLabel: String
    let ivLabel: String
    let hpLabel: String
    /// The two type bits (0x30 of the first byte) an Initial packet carries.
    let initialType: UInt8

    /// RFC 9000/9001.
    public static let v1 = QUICVersion(
        number: 0x0000_0001,
        salt: [0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a],
        keyLabel: "quic key", ivLabel: "quic iv", hpLabel: "quic hp", initialType: 0)

    /// RFC 9369.
    public static let v2 = QUICVersion(
        number: 0x6b33_43cf,
        salt: [0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9],
        keyLabel: "quicv2 key", ivLabel: "quicv2 iv", hpLabel: "quicv2 hp", initialType: 1)

    public static let known: [QUICVersion] = [.v1, .v2]

    /// The version with this number, or nil when the relay cannot read its Initials.
    public static func named(_ number: UInt32) -> QUICVersion? {
        number == v1.number ? v1 : number == v2.number ? v2 : nil
    }

    /// "1", "2", or the number in hex for others (as the query log writes `quic_version`).
    public var description: String { Self.name(number) }

    public static func name(_ number: UInt32) -> String {
        switch number {
        case v1.number: return "1"
        case v2.number: return "2"
        default:
            let hex = String(number, radix: 16)
            return "0x" + String(repeating: "0", count: max(0, 8 - hex.count)) + hex
        }
    }
}
