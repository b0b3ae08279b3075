import DNS
import QUIC
import Glibc
import RelayCore
import Rules

/// Turns query-log records into JSON lines, byte by byte into `out`: this runs for every query
/// on a core the workers may share, so it builds no Strings per line (addresses, numbers and the
/// time are formatted in place; type names, list names and rule texts come from caches). A value
/// type the writer thread keeps in a local variable, so appends are not checked for exclusive
/// access one by one.
struct QueryLogFormatter {
    var out = LineBuffer(capacity: 1 << 20)
    let lists: [String]
    let anonymize: Bool
    var ruleTexts: RuleTextCache

    init(lists: [String], anonymize: Bool) {
        self.lists = lists
        self.anonymize = anonymize
        var names: [[UInt8]] = []
        for list in lists { names.append(Self.json(list)) }
        listNames = names
        ruleTexts = RuleTextCache(lists: lists)
    }

    /// Frees the line buffer and the rule-text arena (the writer thread calls it as it ends).
    func deallocate() {
        out.deallocate()
        ruleTexts.deallocate()
    }


    /// One entry as a JSON line, written byte by byte into `out`: this runs for every query, on
    /// a core the workers may share, so it builds no Strings (addresses, numbers and the time
    /// are formatted in place; type names, list names and rule texts come from caches).
    mutating func format(_ r: QueryLogRecord, name: UnsafeRawBufferPointer) {
        literal("{\"time\":\"")
        appendTime(r.time)
        literal("\",\"proto\":\"")
        literal(r.proto == .udp ? "udp" : r.proto == .tcp ? "tcp" : "quic")
        literal("\",\"client\":\"")
        appendEndpoint(anonymized(r.client))
        literal("\",\"server\":\"")
        appendEndpoint(r.server)
        if r.proto == .quic {
            // QUIC flows carry the SNI and version instead of a question (docs/QUERYLOG.md).
            literal("\",\"sni\":")
            if r.nameLength == 0 { literal("null") } else { appendString(name) }
            literal(",\"quic_version\":")
            if r.quicVersion == 0 {
                literal("null")
            } else {
                literal("\"")
                out.append(QUICVersion.name(r.quicVersion))
                literal("\"")
            }
            if r.sniFailure != 0, let code = SNIFailure.Code(rawValue: r.sniFailure - 1) {
                literal(",\"sni_error\":\"")
                out.append(code.description)
                literal("\"")
            }
        } else {
            literal("\",\"qname\":")
        }
        if r.proto == .quic {
        } else if r.nameLength == 0 && r.qtype == 0 {
            literal("null,\"qtype\":null")
        } else {
            appendString(name)
            literal(",\"qtype\":\"")
            out.append(typeName(r.qtype))
            literal("\"")
        }
        literal(",\"action\":\"")
        out.append(Self.actionNames[Int(r.action.rawValue)])
        literal("\",\"rule\":")
        if r.ruleList != .max, Int(r.ruleList) < lists.count {
            literal("{\"list\":")
            out.append(listNames[Int(r.ruleList)])
            literal(",\"line\":")
            appendNumber(UInt64(r.ruleLine))
            literal(",\"text\":")
            ruleTexts.appendJSON(list: Int(r.ruleList), line: r.ruleLine, to: &out)
            literal("}")
        } else {
            literal("null")
        }
        if r.proto == .quic {
            literal(",\"bytes_up\":")
            appendNumber(r.bytesUp)
            literal(",\"bytes_down\":")
            appendNumber(r.bytesDown)
            literal(",\"duration_us\":")
            appendNumber(UInt64(r.durationMicros))
            literal("}\n")
            return
        }
        literal(",\"rcode\":\"")
        out.append(Self.rcodeNames[Int(r.rcode & 0x0f)])
        literal("\",\"answers\":[")
        for i in 0..<Int(r.answerCount) {
            if i > 0 { literal(",") }
            literal("\"")
            switch i {
            case 0: appendAddress(r.answers.0)
            case 1: appendAddress(r.answers.1)
            case 2: appendAddress(r.answers.2)
            default: appendAddress(r.answers.3)
            }
            literal("\"")
        }
        literal("],\"upstream\":")
        if let upstream = r.upstream {
            literal("\"")
            appendEndpoint(upstream)
            literal("\"")
        } else {
            literal("null")
        }
        literal(r.action == .cached ? ",\"cached\":true,\"duration_us\":" : ",\"cached\":false,\"duration_us\":")
        appendNumber(UInt64(r.durationMicros))
        literal("}\n")
    }

    static let actionNames: [[UInt8]] = ["allowed", "blocked", "rewritten", "local", "cached", "dropped", "error"].map { Array($0.utf8) }
    /// The 16 header rcodes by value, named as DNS.ResponseCode names them.
    static let rcodeNames: [[UInt8]] = (0..<16).map { Array(ResponseCode(rawValue: UInt16($0)).description.utf8) }
    let listNames: [[UInt8]]
    var typeNames: [UInt16: [UInt8]] = [:]
    mutating func typeName(_ type: UInt16) -> [UInt8] {
        if let known = typeNames[type] { return known }
        let name = Array(RecordType.name(type).utf8)
        typeNames[type] = name
        return name
    }

    @inline(__always)
    mutating func literal(_ text: StaticString) {
        out.append(text)
    }

    @inline(__always)
    mutating func appendNumber(_ value: UInt64) {
        if value < 10 {
            out.append(UInt8(48 + value))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var v = value
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            while v > 0 {
                d[19 - n] = UInt8(48 + v % 10)
                v /= 10
                n += 1
            }
            out.append(UnsafeRawBufferPointer(rebasing: d[(20 - n)...]))
        }
    }

    mutating func appendAddress(_ address: IPAddress) {
        switch address {
        case .v4(let a):
            let host = UInt32(bigEndian: a.rawValue)
            appendNumber(UInt64(host >> 24)); out.append(UInt8(ascii: "."))
            appendNumber(UInt64(host >> 16 & 0xff)); out.append(UInt8(ascii: "."))
            appendNumber(UInt64(host >> 8 & 0xff)); out.append(UInt8(ascii: "."))
            appendNumber(UInt64(host & 0xff))
        case .v6(let a):
            var raw = in6_addr()
            withUnsafeMutableBytes(of: &raw) { bytes in
                withUnsafeBytes(of: a.high) { bytes.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: 8) }
                withUnsafeBytes(of: a.low) { (bytes.baseAddress! + 8).copyMemory(from: $0.baseAddress!, byteCount: 8) }
            }
            var text = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))  // 48 bytes ≥ INET6_ADDRSTRLEN
            withUnsafeMutableBytes(of: &text) { buffer in
                let chars = buffer.baseAddress!.assumingMemoryBound(to: CChar.self)
                guard inet_ntop(AF_INET6, &raw, chars, socklen_t(buffer.count)) != nil else { return }
                out.append(UnsafeRawBufferPointer(start: buffer.baseAddress, count: strlen(chars)))
            }
        }
    }

    mutating func appendEndpoint(_ endpoint: Endpoint) {
        if endpoint.address.isIPv6 {
            out.append(UInt8(ascii: "["))
            appendAddress(endpoint.address)
            out.append(UInt8(ascii: "]"))
        } else {
            appendAddress(endpoint.address)
        }
        out.append(UInt8(ascii: ":"))
        appendNumber(UInt64(endpoint.port))
    }

    func anonymized(_ client: Endpoint) -> Endpoint {
        guard anonymize else { return client }
        switch client.address {
        case .v4(let a):
            return Endpoint(address: .v4(IPv4Address(rawValue: (UInt32(bigEndian: a.rawValue) & 0xffff_ff00).bigEndian)), port: 0)
        case .v6(let a):
            return Endpoint(address: .v6(IPv6Address(high: (UInt64(bigEndian: a.high) & 0xffff_ffff_ffff_ff00).bigEndian, low: 0)), port: 0)
        }
    }

    mutating func append(_ text: String) {
        out.append(text)
    }

    /// A JSON string from raw name bytes: printable ASCII as is, quotes and backslashes escaped,
    /// anything else as \u00XX (names from the wire may hold any byte).
    mutating func appendString(_ bytes: UnsafeRawBufferPointer) {
        out.append(UInt8(ascii: "\""))
        for b in bytes {
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                out.append(UInt8(ascii: "\\")); out.append(b)
            case 0x20..<0x7f:
                out.append(b)
            default:
                let hex = Array("0123456789abcdef".utf8)
                out.append(Array("\\u00".utf8))
                out.append(hex[Int(b >> 4)]); out.append(hex[Int(b & 0xf)])
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// A string as JSON (quoted, escaped).
    static func json(_ text: String) -> [UInt8] {
        var result: [UInt8] = [UInt8(ascii: "\"")]
        let hex = Array("0123456789abcdef".utf8)
        for b in text.utf8 {
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): result.append(UInt8(ascii: "\\")); result.append(b)
            case 0..<0x20: result += Array("\\u00".utf8); result.append(hex[Int(b >> 4)]); result.append(hex[Int(b & 0xf)])
            default: result.append(b)
            }
        }
        result.append(UInt8(ascii: "\""))
        return result
    }

    /// 2026-11-26T21:13:32.123456Z; the part up to the second is kept from the last call.
    mutating func appendTime(_ micros: UInt64) {
        let second = micros / 1_000_000
        if second != timePrefixSecond {
            var seconds = time_t(second)
            var parts = tm()
            gmtime_r(&seconds, &parts)
            func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
            timePrefix = Array("\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).".utf8)
            timePrefixSecond = second
        }
        out.append(timePrefix)
        var fraction = micros % 1_000_000
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (48, 48, 48, 48, 48, 48)
        withUnsafeMutableBytes(of: &digits) { d in
            for i in stride(from: 5, through: 0, by: -1) {
                d[i] = UInt8(48 + fraction % 10)
                fraction /= 10
            }
            out.append(UnsafeRawBufferPointer(d))
        }
        out.append(UInt8(ascii: "Z"))
    }

    var timePrefix: [UInt8] = []
    var timePrefixSecond: UInt64 = .max

}
