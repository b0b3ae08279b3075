import DNS
import QUIC
import Glibc
import RelayCore
import Rules

/// Turns query-log records into JSON lines (docs/QUERYLOG.md), byte by byte into `out`. This runs
/// for every answered query, on a core the workers may share, so a line is built without a
/// String, a reference count or a lazy global: the fixed parts are literals merged as far as the
/// format allows, numbers and addresses are written in place (LineBuffer+Text), names come from
/// tables (NameTable, AddressText) and rule texts from a cache (RuleTextCache). A value type the writer thread
/// keeps in a local variable, so appends are not checked for exclusive access one by one.
struct QueryLogFormatter {
    var out = LineBuffer(capacity: 1 << 20)
    let anonymize: Bool
    var ruleTexts: RuleTextCache
    /// `filters.lists` paths as JSON strings, by list index.
    private let listNames: NameTable
    private let actionNames = NameTable(["allowed", "blocked", "rewritten", "local", "cached", "dropped", "error"])
    /// The 16 header rcodes by value, named as DNS.ResponseCode names them.
    private let rcodeNames = NameTable((0..<16).map { ResponseCode(rawValue: UInt16($0)).description })
    /// Record types 0–255 by number; the few above (CAA, private types) are kept as they come.
    private let typeNames = NameTable((0..<256).map { RecordType.name(UInt16($0)) })
    private var otherTypeNames: [UInt16: [UInt8]] = [:]
    private let addresses = AddressText()
    /// "2026-11-26T21:13:32." for the second `timePrefixSecond`, kept from the last line.
    private var timePrefix: (UInt64, UInt64, UInt64) = (0, 0, 0)
    private var timePrefixLength = 0
    private var timePrefixSecond: UInt64 = .max

    /// `lists`: the names written (`rule.list`); `files`: where their texts are read back.
    init(lists: [String], files: [String]? = nil, anonymize: Bool) {
        self.anonymize = anonymize
        listNames = NameTable(lists.map { Self.json($0) })
        ruleTexts = RuleTextCache(lists: files ?? lists)
    }

    /// Frees the line buffer, the tables and the rule-text arena (the writer thread calls it as
    /// it ends).
    func deallocate() {
        out.deallocate()
        ruleTexts.deallocate()
        for table in [listNames, actionNames, rcodeNames, typeNames] { table.deallocate() }
        addresses.deallocate()
    }

    /// One entry as a JSON line.
    mutating func format(_ r: QueryLogRecord, name: UnsafeRawBufferPointer, clientName: UnsafeRawBufferPointer? = nil) {
        out.append("{\"time\":\"")
        appendTime(r.time)
        switch r.proto {
        case .udp: out.append("\",\"proto\":\"udp\",\"client\":\"")
        case .tcp: out.append("\",\"proto\":\"tcp\",\"client\":\"")
        case .quic: out.append("\",\"proto\":\"quic\",\"client\":\"")
        }
        addresses.append(anonymized(r.client), to: &out)
        // Names are plain host names (ClientNameText): no escaping. Not with anonymized clients.
        if let clientName, !anonymize {
            out.append("\",\"client_name\":\"")
            out.append(clientName)
        }
        out.append("\",\"server\":\"")
        addresses.append(r.server, to: &out)
        if r.local { out.append("\",\"origin\":\"local") }
        if r.proto == .quic {
            formatFlow(r, name: name)
            return
        }
        if r.nameLength == 0 && r.qtype == 0 {
            out.append("\",\"qname\":null,\"qtype\":null,\"action\":\"")
        } else {
            out.append("\",\"qname\":")
            out.appendJSONString(wire: name)
            out.append(",\"qtype\":\"")
            appendTypeName(r.qtype)
            out.append("\",\"action\":\"")
        }
        out.append(actionNames[Int(r.action.rawValue)])
        appendRule(r)
        out.append(",\"rcode\":\"")
        out.append(rcodeNames[Int(r.rcode & 0x0f)])
        out.append("\",\"answers\":[")
        for i in 0..<Int(r.answerCount) {
            out.append(i == 0 ? "\"" : ",\"")
            switch i {
            case 0: addresses.append(r.answers.0, to: &out)
            case 1: addresses.append(r.answers.1, to: &out)
            case 2: addresses.append(r.answers.2, to: &out)
            default: addresses.append(r.answers.3, to: &out)
            }
            out.append(UInt8(ascii: "\""))
        }
        if let upstream = r.upstream {
            out.append("],\"upstream\":\"")
            addresses.append(upstream, to: &out)
            if let identity = r.identity { appendIdentity(identity) }
            out.append("\",\"cached\":")
        } else {
            out.append("],\"upstream\":null,\"cached\":")
        }
        out.append(r.action == .cached ? "true,\"duration_us\":" : "false,\"duration_us\":")
        out.appendDecimal(UInt64(r.durationMicros))
        out.append("}\n")
    }

    /// The rest of a QUIC flow's line: the SNI and version instead of a question, bytes each way
    /// instead of an answer (docs/QUERYLOG.md). Once per flow, so Strings are fine here.
    private mutating func formatFlow(_ r: QueryLogRecord, name: UnsafeRawBufferPointer) {
        out.append("\",\"sni\":")
        if r.nameLength == 0 { out.append("null") } else { out.appendJSONString(wire: name) }
        out.append(",\"quic_version\":")
        if r.quicVersion == 0 {
            out.append("null")
        } else {
            out.append(UInt8(ascii: "\""))
            out.append(string: QUICVersion.name(r.quicVersion))
            out.append(UInt8(ascii: "\""))
        }
        if r.sniFailure != 0, let code = SNIFailure.Code(rawValue: r.sniFailure - 1) {
            out.append(",\"sni_error\":\"")
            out.append(string: code.description)
            out.append(UInt8(ascii: "\""))
        }
        out.append(",\"action\":\"")
        out.append(actionNames[Int(r.action.rawValue)])
        appendRule(r)
        out.append(",\"bytes_up\":")
        out.appendDecimal(r.bytesUp)
        out.append(",\"bytes_down\":")
        out.appendDecimal(r.bytesDown)
        out.append(",\"duration_us\":")
        out.appendDecimal(UInt64(r.durationMicros))
        out.append(r.flowEnd ? ",\"event\":\"end\"}\n" : "}\n")
    }

    /// `","rule":` and the deciding rule's list, line and text, or null; closes the action's quote.
    @inline(__always)
    private mutating func appendRule(_ r: QueryLogRecord) {
        if r.ruleList == BuiltinRule.list, let builtin = BuiltinRule(rawValue: r.ruleLine) {
            // A bypass answer: shown as a rule of the list "bypass", its key as the text.
            out.append("\",\"rule\":{\"list\":\"bypass\",\"line\":")  // BuiltinRule.listName
            out.appendDecimal(UInt64(builtin.rawValue))
            out.append(",\"text\":\"")
            out.append(string: builtin.key)
            out.append("\"}")
            return
        }
        guard r.ruleList != .max, Int(r.ruleList) < listNames.count else {
            out.append("\",\"rule\":null")
            return
        }
        out.append("\",\"rule\":{\"list\":")
        out.append(listNames[Int(r.ruleList)])
        out.append(",\"line\":")
        out.appendDecimal(UInt64(r.ruleLine))
        out.append(",\"text\":")
        ruleTexts.append(list: Int(r.ruleList), line: r.ruleLine, to: &out)
        out.append(UInt8(ascii: "}"))
    }

    @inline(__always)
    private mutating func appendTypeName(_ type: UInt16) {
        if type < 256 {
            out.append(typeNames[Int(type)])
            return
        }
        if otherTypeNames[type] == nil { otherTypeNames[type] = Array(RecordType.name(type).utf8) }
        out.append(otherTypeNames[type]!)
    }

    /// `"identity"`: the client's address the upstream saw (`source`), or its subnet (`subnet`),
    /// after `"upstream"` (docs/QUERYLOG.md).
    private mutating func appendIdentity(_ identity: IPPrefix) {
        out.append("\",\"identity\":\"")
        let full = identity.length == (identity.address.isIPv6 ? 128 : 32)
        if full {
            addresses.append(anonymized(Endpoint(address: identity.address, port: 0)).address, to: &out)
            return
        }
        // A subnet wider than what anonymizing keeps is logged as it is; a narrower one is cut.
        let kept = anonymize ? min(identity.length, identity.address.isIPv6 ? 56 : 24) : identity.length
        let shown = IPPrefix(address: identity.address, length: kept)
        addresses.append(shown.address, to: &out)
        out.append(UInt8(ascii: "/"))
        out.appendDecimal(UInt64(kept))
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

    /// A string as JSON (quoted, escaped), for texts read once (list paths, rule texts).
    static func json(_ text: String) -> [UInt8] {
        var text = text
        var buffer = LineBuffer(capacity: text.utf8.count * 6 + 2)
        defer { buffer.deallocate() }
        text.withUTF8 { buffer.appendJSONString(utf8: UnsafeRawBufferPointer($0)) }
        return Array(buffer.bytes)
    }

    /// 2026-11-26T21:13:32.123456Z; the part up to the second is kept from the last call.
    mutating func appendTime(_ micros: UInt64) {
        let second = micros / 1_000_000
        if second != timePrefixSecond {
            var seconds = time_t(second)
            var parts = tm()
            gmtime_r(&seconds, &parts)
            func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
            let text = Array("\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).".utf8.prefix(24))
            withUnsafeMutableBytes(of: &timePrefix) { $0.copyBytes(from: text) }
            timePrefixLength = text.count
            timePrefixSecond = second
        }
        withUnsafeBytes(of: timePrefix) { out.append(UnsafeRawBufferPointer(rebasing: $0[0..<timePrefixLength])) }
        var fraction = micros % 1_000_000
        let p = out.reserve(7)
        for i in stride(from: 5, through: 0, by: -1) {
            p[i] = UInt8(truncatingIfNeeded: 48 &+ fraction % 10)
            fraction /= 10
        }
        p[6] = UInt8(ascii: "Z")
        out.advance(by: 7)
    }

    /// Appends text (the log's own status lines; not per query).
    mutating func append(string text: String) {
        out.append(string: text)
    }
}
