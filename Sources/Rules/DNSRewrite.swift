import RelayCore

/// What a `$dnsrewrite` rule answers (AdGuard's syntax): a response code, a record, or an alias.
///
/// Short forms: `$dnsrewrite=NXDOMAIN` (also `NOERROR`, `REFUSED`, `SERVFAIL`), an IPv4 or IPv6
/// address (A or AAAA), or a host name (CNAME). Full form: `RCODE;TYPE;VALUE`, such as
/// `NOERROR;MX;10 mail.example.test` or `NXDOMAIN;;`.
public enum DNSRewrite: Equatable, Sendable, CustomStringConvertible {
    /// An answer with this response code and no records (NOERROR here means "no such type").
    case rcode(UInt8)
    /// A NOERROR answer with this record for the query's name, given to queries of its type.
    /// `rdata` is ready for the wire (names uncompressed).
    case record(type: UInt16, rdata: [UInt8], text: String)
    /// The name is an alias of this one: answer with a CNAME record.
    case cname(String)

    static let rcodes: [String: UInt8] = ["NOERROR": 0, "SERVFAIL": 2, "NXDOMAIN": 3, "REFUSED": 5]

    /// Parses a `$dnsrewrite` value; the error says why it cannot be used.
    static func parse(_ value: Substring) -> Result<DNSRewrite, RuleSyntaxError> {
        if value.contains(";") {
            let parts = value.split(separator: ";", omittingEmptySubsequences: false)
            guard parts.count == 3 else { return .failure("$dnsrewrite expects RCODE;TYPE;VALUE, got '\(value)'") }
            guard let rcode = rcodes[parts[0].uppercased()] else { return .failure("unknown response code '\(parts[0])' in $dnsrewrite") }
            if rcode != 0 || (parts[1].isEmpty && parts[2].isEmpty) {
                guard parts[1].isEmpty && parts[2].isEmpty else { return .failure("$dnsrewrite=\(parts[0]) carries no record; write \(parts[0]);;") }
                return .success(.rcode(rcode))
            }
            guard let type = RecordType.number(String(parts[1])) else { return .failure("unknown record type '\(parts[1])' in $dnsrewrite") }
            return record(type: type, value: parts[2])
        }
        if let rcode = rcodes[value.uppercased()] { return .success(.rcode(rcode)) }
        if let address = IPAddress(String(value)) { return record(type: address.isIPv6 ? 28 : 1, value: value) }
        if DomainName.normalize(value) != nil { return record(type: 5, value: value) }
        return .failure("'\(value)' in $dnsrewrite is not a response code, an address or a host name")
    }

    /// A record of `type` from its presentation form.
    private static func record(type: UInt16, value: Substring) -> Result<DNSRewrite, RuleSyntaxError> {
        let text = String(value)
        switch type {
        case 1, 28:
            guard let address = IPAddress(text), address.isIPv6 == (type == 28) else {
                return .failure("'\(value)' is not an \(type == 1 ? "IPv4" : "IPv6") address for \(RecordType.name(type))")
            }
            switch address {
            case .v4(let a): return .success(.record(type: 1, rdata: withUnsafeBytes(of: a.rawValue) { Array($0) }, text: text))
            case .v6(let a): return .success(.record(type: 28, rdata: a.bytes, text: text))
            }
        case 5:
            guard let name = DomainName.normalize(value) else { return .failure("'\(value)' is not a host name for CNAME") }
            return .success(.cname(name))
        case 12:
            guard let name = DomainName.normalize(value) else { return .failure("'\(value)' is not a host name for PTR") }
            return .success(.record(type: 12, rdata: DomainName.wire(name), text: name))
        case 16:
            guard !value.isEmpty, value.utf8.count <= 1024 else { return .failure("TXT text must be 1 to 1024 bytes") }
            var rdata: [UInt8] = []
            var bytes = Array(value.utf8)[...]
            while !bytes.isEmpty {
                let chunk = bytes.prefix(255)
                rdata.append(UInt8(chunk.count))
                rdata.append(contentsOf: chunk)
                bytes = bytes.dropFirst(chunk.count)
            }
            return .success(.record(type: 16, rdata: rdata, text: text))
        case 15:
            let fields = value.split(separator: " ")
            guard fields.count == 2, let preference = UInt16(fields[0]), let name = DomainName.normalize(fields[1]) else {
                return .failure("MX needs 'PREFERENCE HOST', got '\(value)'")
            }
            return .success(.record(type: 15, rdata: [UInt8(preference >> 8), UInt8(preference & 0xff)] + DomainName.wire(name), text: text))
        case 33:
            let fields = value.split(separator: " ")
            guard fields.count == 4, let priority = UInt16(fields[0]), let weight = UInt16(fields[1]), let port = UInt16(fields[2]),
                  let name = DomainName.normalize(fields[3]) else {
                return .failure("SRV needs 'PRIORITY WEIGHT PORT HOST', got '\(value)'")
            }
            let numbers = [priority, weight, port].flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
            return .success(.record(type: 33, rdata: numbers + DomainName.wire(name), text: text))
        case 64, 65:
            switch SVCBRecord.rdata(value) {
            case .success(let rdata): return .success(.record(type: type, rdata: rdata, text: text))
            case .failure(let error): return .failure(error)
            }
        default:
            return .failure("$dnsrewrite records of type \(RecordType.name(type)) are not supported (A, AAAA, CNAME, PTR, TXT, MX, SRV, SVCB, HTTPS are)")
        }
    }

    public var description: String {
        switch self {
        case .rcode(let code): return Self.rcodes.first { $0.value == code }?.key ?? "RCODE\(code)"
        case .record(let type, _, let text): return "\(RecordType.name(type)) \(text)"
        case .cname(let name): return "CNAME \(name)"
        }
    }
}

/// Why a rule's text cannot be used; becomes the reason on a rejected line.
struct RuleSyntaxError: Error, Equatable, ExpressibleByStringInterpolation {
    var reason: String
    init(stringLiteral value: String) { reason = value }
    init(stringInterpolation: DefaultStringInterpolation) { reason = String(stringInterpolation: stringInterpolation) }
}
