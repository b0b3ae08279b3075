/// Why no server name could be read from a flow's first datagrams: an opaque code to count and
/// compare, and a reason for people. Never thrown on the datapath for bytes we merely dislike;
/// the flow is then relayed (or not) without an SNI.
public struct SNIFailure: Error, Equatable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: UInt8
        public var description: String { Self.names[Int(rawValue)] }

        private init(checked rawValue: UInt8) { self.rawValue = rawValue }

        /// The code with this raw value, or nil for one that does not exist.
        public init?(rawValue: UInt8) {
            guard Int(rawValue) < Self.names.count else { return nil }
            self.init(checked: rawValue)
        }

        /// The first datagram is not a QUIC long-header packet.
        public static let notQUIC = Code(checked: 0)
        /// A version whose Initial keys we do not know (version negotiation, drafts, greasing).
        public static let unknownVersion = Code(checked: 1)
        /// A header field runs past the datagram, or is out of its allowed range.
        public static let malformedHeader = Code(checked: 2)
        /// The AEAD tag did not verify: not a client Initial, or damaged.
        public static let decryptionFailed = Code(checked: 3)
        /// A frame that cannot appear in an Initial packet, or one cut short.
        public static let malformedFrame = Code(checked: 4)
        /// CRYPTO data beyond the reassembly bound, or overlapping data that disagrees.
        public static let cryptoOutOfRange = Code(checked: 5)
        /// The CRYPTO stream does not start with a ClientHello, or the ClientHello is malformed.
        public static let malformedClientHello = Code(checked: 6)
        /// A well-formed ClientHello without a server_name extension.
        public static let noServerName = Code(checked: 7)
        /// The ClientHello did not complete within the datagram bound.
        public static let incomplete = Code(checked: 8)

        static let names = ["not QUIC", "unknown version", "malformed header", "decryption failed",
                            "malformed frame", "CRYPTO out of range", "malformed ClientHello",
                            "no server_name", "incomplete ClientHello"]
    }

    public let code: Code
    public let reason: String

    init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(code): \(reason)" }

    public static func == (a: SNIFailure, b: SNIFailure) -> Bool { a.code == b.code }
}
