import Configuration
import DNS
import Rules

/// The known ways around the filter that one answer closes (`bypass:`, docs/BYPASS.md): DDR
/// discovery, Firefox's canary, iCloud Private Relay. A selector over the question's wire bytes
/// (the name is not spelled out: a few byte compares per query), and the answer each calls for.
public struct BypassStage: Sendable {
    public var settings: Configuration.Bypass

    public init(_ settings: Configuration.Bypass) {
        self.settings = settings
    }

    public typealias Answer = Configuration.Bypass.Answer

    /// The built-in rule that answers `question` (the name's wire form at the start) of `type`,
    /// and how; nil when none does or it is switched off.
    @inline(__always)
    public func match(question: UnsafeRawBufferPointer, type: UInt16) -> (BuiltinRule, Answer)? {
        guard question.count >= 2 else { return nil }
        // DDR names start with an underscore label: one byte tells most names apart.
        if question[1] == UInt8(ascii: "_") {
            guard let answer = settings.ddr, Self.isDDR(question, type: type) else { return nil }
            return (.ddr, answer)
        }
        // The first label's length picks the one candidate to compare with.
        let length = question[0]
        if length == Self.canary[0] {
            guard let answer = settings.firefoxCanary, Self.equals(question, Self.canary) else { return nil }
            return (.firefoxCanary, answer)
        }
        if length == Self.mask[0] || length == Self.maskH2[0] {
            guard let answer = settings.privateRelay, Self.equals(question, length == Self.mask[0] ? Self.mask : Self.maskH2) else { return nil }
            return (.privateRelay, answer)
        }
        return nil
    }

    /// `_dns.resolver.arpa` of any type (RFC 9462), `_dns.<name>` SVCB, or `_<port>._dns.<name>`
    /// SVCB (RFC 9461 §2: a resolver on another port).
    @inline(__always)
    static func isDDR(_ question: UnsafeRawBufferPointer, type: UInt16) -> Bool {
        if label(question, at: 0, equals: "_dns") { return type == svcb || equals(question, resolverArpa) }
        guard type == svcb else { return false }
        let second = 1 + Int(question[0])
        return second < question.count && label(question, at: second, equals: "_dns")
    }

    // MARK: Wire compares

    static let svcb: UInt16 = 64
    static let resolverArpa = DomainName.wire("_dns.resolver.arpa")
    static let canary = DomainName.wire("use-application-dns.net")
    static let mask = DomainName.wire("mask.icloud.com")
    static let maskH2 = DomainName.wire("mask-h2.icloud.com")

    /// Whether the name at the start of `question` is `wire` (letters in any case).
    @inline(__always)
    static func equals(_ question: UnsafeRawBufferPointer, _ wire: [UInt8]) -> Bool {
        guard question.count >= wire.count else { return false }
        for i in 0..<wire.count where lower(question[i]) != wire[i] { return false }
        return true
    }

    /// Whether the label at `offset` (its length byte) spells `text` (lower case).
    @inline(__always)
    static func label(_ question: UnsafeRawBufferPointer, at offset: Int, equals text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard offset + 1 + count <= question.count, Int(question[offset]) == count else { return false }
        let start = text.utf8Start
        for i in 0..<count where lower(question[offset + 1 + i]) != start[i] { return false }
        return true
    }

    @inline(__always)
    static func lower(_ byte: UInt8) -> UInt8 { byte >= 65 && byte <= 90 ? byte | 0x20 : byte }
}
