import RelayCore

/// DHCP lease files, told apart by content:
/// - dnsmasq (`/var/lib/misc/dnsmasq.leases`): `EXPIRY MAC ADDRESS NAME CLIENT-ID`, one lease a
///   line, `*` for no name; IPv6 leases have an IAID where the MAC is; a `duid` line.
/// - ISC dhcpd (`dhcpd.leases`): `lease ADDRESS { ... client-hostname "NAME"; binding state S; }`
///   blocks, appended as leases change (the last block of an address counts).
/// - Kea's memfile CSV (`kea-leases4.csv`, `kea-leases6.csv`): a header naming `address` and
///   `hostname` (and `state`: only 0, assigned, counts), rows appended as leases change.
public enum LeaseFile {
    public enum Format: String, Sendable { case dnsmasq, isc, kea }

    /// The format of a lease file's bytes.
    public static func format(of bytes: [UInt8]) -> Format { format(of: NameFileContents.lines(bytes)) }

    static func format(of lines: [(number: Int, text: Substring)]) -> Format {
        for (_, text) in lines {
            let t = text.drop { $0 == " " || $0 == "\t" }
            if t.isEmpty || t.hasPrefix("#") { continue }
            if t.hasPrefix("address,") { return .kea }
            if t.hasPrefix("lease ") || t.hasPrefix("authoring-byte-order") || t.hasPrefix("server-duid") { return .isc }
            return .dnsmasq
        }
        return .dnsmasq
    }

    public static func parse(_ bytes: [UInt8], file: String) -> NameFileContents {
        let lines = NameFileContents.lines(bytes)
        var out: NameFileContents
        switch format(of: lines) {
        case .dnsmasq: out = dnsmasq(lines, file: file)
        case .isc: out = isc(lines, file: file)
        case .kea: out = kea(lines, file: file)
        }
        // The last lease of an address counts; first appearance keeps the order.
        var last: [IPAddress: String] = [:]
        for entry in out.names { last[entry.address] = entry.name }
        var seen = Set<IPAddress>()
        out.names = out.names.compactMap { entry in
            guard seen.insert(entry.address).inserted, let name = last[entry.address] else { return nil }
            return (entry.address, name)
        }
        return out
    }

    static func dnsmasq(_ lines: [(number: Int, text: Substring)], file: String) -> NameFileContents {
        var out = NameFileContents()
        for (number, text) in lines {
            let fields = text.split(separator: " ")
            if fields.isEmpty || fields[0] == "duid" { continue }
            guard fields.count >= 4, UInt64(fields[0]) != nil else {
                out.problems.append(NameFileProblem(file: file, line: number, reason: "not a dnsmasq lease (EXPIRY MAC ADDRESS NAME CLIENT-ID): '\(text.prefix(64))'"))
                continue
            }
            guard let address = IPAddress(String(fields[2])) else {
                out.problems.append(NameFileProblem(file: file, line: number, reason: "'\(fields[2].prefix(64))' is not an IP address"))
                continue
            }
            if fields[3] == "*" { continue }  // a lease without a name
            guard let name = ClientNameText.normalize(fields[3]) else {
                out.problems.append(NameFileProblem(file: file, line: number, reason: "'\(fields[3].prefix(64))' is not a host name"))
                continue
            }
            out.names.append((address, name))
        }
        return out
    }

    static func isc(_ lines: [(number: Int, text: Substring)], file: String) -> NameFileContents {
        var out = NameFileContents()
        var current: (address: IPAddress, name: String?, active: Bool)?
        for (number, raw) in lines {
            let text = raw.trimmingBlanks()
            if text.isEmpty || text.hasPrefix("#") { continue }
            if text.hasPrefix("lease ") {
                let fields = text.split(separator: " ")
                guard fields.count >= 3, fields.last == "{", let address = IPAddress(String(fields[1])) else {
                    out.problems.append(NameFileProblem(file: file, line: number, reason: "not a lease block start (lease ADDRESS {): '\(text.prefix(64))'"))
                    current = nil
                    continue
                }
                current = (address, nil, true)
            } else if text == "}" {
                if let lease = current, lease.active, let name = lease.name { out.names.append((lease.address, name)) }
                current = nil
            } else if current != nil, text.hasPrefix("client-hostname ") {
                let value = text.dropFirst("client-hostname ".count).trimmingCharacters(";").trimmingCharacters("\"")
                if let name = ClientNameText.normalize(value) {
                    current?.name = name
                } else {
                    out.problems.append(NameFileProblem(file: file, line: number, reason: "'\(value.prefix(64))' is not a host name"))
                }
            } else if current != nil, text.hasPrefix("binding state ") {
                current?.active = text.dropFirst("binding state ".count).trimmingCharacters(";") == "active"
            }
        }
        return out
    }

    static func kea(_ lines: [(number: Int, text: Substring)], file: String) -> NameFileContents {
        var out = NameFileContents()
        var columns: (address: Int, hostname: Int, state: Int?, count: Int)?
        for (number, text) in lines {
            if text.isEmpty || text.hasPrefix("#") { continue }
            let fields = text.split(separator: ",", omittingEmptySubsequences: false)
            if text.hasPrefix("address,") {
                guard let hostname = fields.firstIndex(of: "hostname") else {
                    out.problems.append(NameFileProblem(file: file, line: number, reason: "a Kea header without a hostname column"))
                    columns = nil
                    continue
                }
                columns = (0, hostname, fields.firstIndex(of: "state"), fields.count)
                continue
            }
            guard let c = columns else {
                out.problems.append(NameFileProblem(file: file, line: number, reason: "a Kea lease row before the header"))
                continue
            }
            // Later Kea versions add columns at the end: fewer than the header says is broken.
            guard fields.count >= c.count, let address = IPAddress(String(fields[c.address])) else {
                out.problems.append(NameFileProblem(file: file, line: number, reason: "not a Kea lease row (\(c.count) columns from the header, ADDRESS first): '\(text.prefix(64))'"))
                continue
            }
            if let s = c.state, fields[s] != "0" { continue }  // declined or expired-reclaimed
            let raw = fields[c.hostname]
            if raw.isEmpty { continue }
            guard let name = ClientNameText.normalize(raw) else {
                out.problems.append(NameFileProblem(file: file, line: number, reason: "'\(raw.prefix(64))' is not a host name"))
                continue
            }
            out.names.append((address, name))
        }
        return out
    }
}

extension Substring {
    func trimmingBlanks() -> Substring {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !blank($0) }), let last = lastIndex(where: { !blank($0) }) else { return "" }
        return self[first...last]
    }

    func trimmingCharacters(_ c: Character) -> Substring {
        var s = self
        while s.first == c { s = s.dropFirst() }
        while s.last == c { s = s.dropLast() }
        return s
    }
}
