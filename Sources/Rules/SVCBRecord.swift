import RelayCore

/// The RDATA of an SVCB or HTTPS record (RFC 9460) from its presentation form, for
/// `$dnsrewrite=NOERROR;HTTPS;1 . alpn=h3,h2 ipv4hint=192.0.2.1`: priority, target (`.` for the
/// owner), then `key=value` parameters. Bounded: at most 32 parameters, 1 KiB of wire.
enum SVCBRecord {
    static let keys: [String: UInt16] = [
        "mandatory": 0, "alpn": 1, "no-default-alpn": 2, "port": 3, "ipv4hint": 4, "ech": 5, "ipv6hint": 6, "dohpath": 7,
    ]

    static func rdata(_ text: Substring) -> Result<[UInt8], RuleSyntaxError> {
        let fields = text.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 2, let priority = UInt16(fields[0]) else {
            return .failure("HTTPS/SVCB needs 'PRIORITY TARGET [key=value ...]', got '\(text)'")
        }
        var rdata = [UInt8(priority >> 8), UInt8(priority & 0xff)]
        if fields[1] == "." {
            rdata.append(0)
        } else {
            guard let name = DomainName.normalize(fields[1]) else { return .failure("'\(fields[1])' is not a target name") }
            rdata += DomainName.wire(name)
        }
        if priority == 0 && fields.count > 2 { return .failure("an AliasMode record (priority 0) takes no parameters") }
        guard fields.count - 2 <= 32 else { return .failure("more than 32 parameters") }
        var params: [(key: UInt16, value: [UInt8])] = []
        for field in fields.dropFirst(2) {
            let parts = field.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0]).lowercased()
            guard let key = keys[name] ?? (name.hasPrefix("key") ? UInt16(name.dropFirst(3)) : nil) else {
                return .failure("unknown SVCB parameter '\(parts[0])'")
            }
            guard !params.contains(where: { $0.key == key }) else { return .failure("parameter '\(name)' is given twice") }
            switch value(key: key, parts.count == 2 ? parts[1] : nil) {
            case .success(let bytes): params.append((key, bytes))
            case .failure(let error): return .failure(error)
            }
        }
        // RFC 9460 §2.2: in increasing key order.
        for (key, value) in params.sorted(by: { $0.key < $1.key }) {
            rdata += [UInt8(key >> 8), UInt8(key & 0xff), UInt8(value.count >> 8), UInt8(value.count & 0xff)] + value
        }
        guard rdata.count <= 1024 else { return .failure("the record is longer than 1 KiB") }
        return .success(rdata)
    }

    private static func value(key: UInt16, _ text: Substring?) -> Result<[UInt8], RuleSyntaxError> {
        func list(_ text: Substring?) -> [Substring]? {
            guard let text, !text.isEmpty else { return nil }
            let items = text.split(separator: ",", omittingEmptySubsequences: false)
            return items.contains(where: \.isEmpty) ? nil : items
        }
        switch key {
        case 2:
            return text == nil ? .success([]) : .failure("no-default-alpn takes no value")
        case 0:
            guard let items = list(text) else { return .failure("mandatory needs a list of keys") }
            var out: [UInt8] = []
            for item in items {
                guard let k = keys[String(item).lowercased()] ?? (item.hasPrefix("key") ? UInt16(item.dropFirst(3)) : nil), k != 0 else {
                    return .failure("'\(item)' cannot be mandatory")
                }
                out += [UInt8(k >> 8), UInt8(k & 0xff)]
            }
            return .success(out)
        case 1:
            guard let items = list(text) else { return .failure("alpn needs a list such as h3,h2") }
            var out: [UInt8] = []
            for item in items {
                guard item.utf8.count <= 255, !item.contains("\\") else { return .failure("'\(item)' is not an ALPN id") }
                out.append(UInt8(item.utf8.count))
                out += Array(item.utf8)
            }
            return .success(out)
        case 3:
            guard let text, let port = UInt16(text) else { return .failure("port needs a number") }
            return .success([UInt8(port >> 8), UInt8(port & 0xff)])
        case 4, 6:
            guard let items = list(text) else { return .failure("\(key == 4 ? "ipv4hint" : "ipv6hint") needs addresses") }
            var out: [UInt8] = []
            for item in items {
                switch IPAddress(String(item)) {
                case .v4(let a)? where key == 4: withUnsafeBytes(of: a.rawValue) { out += $0 }
                case .v6(let a)? where key == 6: out += a.bytes
                default: return .failure("'\(item)' is not an \(key == 4 ? "IPv4" : "IPv6") address")
                }
            }
            return .success(out)
        case 5:
            guard let text, let bytes = base64(text) else { return .failure("ech needs base64") }
            return .success(bytes)
        default:
            guard let text else { return .success([]) }
            guard !text.contains("\\") else { return .failure("escapes in parameter values are not supported") }
            return .success(Array(text.utf8))
        }
    }

    /// Standard base64 with padding; nil for anything else.
    static func base64(_ text: Substring) -> [UInt8]? {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var table = [Int](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = i }
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            var n = 0
            var pad = 0
            for j in 0..<4 {
                let c = bytes[i + j]
                if c == UInt8(ascii: "=") && i + 4 == bytes.count && j >= 2 {
                    pad += 1
                    n <<= 6
                } else {
                    guard pad == 0, table[Int(c)] >= 0 else { return nil }
                    n = n << 6 | table[Int(c)]
                }
            }
            out.append(UInt8(n >> 16 & 0xff))
            if pad < 2 { out.append(UInt8(n >> 8 & 0xff)) }
            if pad < 1 { out.append(UInt8(n & 0xff)) }
            i += 4
        }
        return out
    }
}
