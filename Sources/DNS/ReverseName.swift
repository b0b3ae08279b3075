import RelayCore

/// Reverse lookups (PTR) for client names: the query name of an address, and the name an answer
/// gives. No I/O; bounded like every parser of untrusted bytes here (RecordWalker's walk, names
/// expanded by `AliasAnswer.expandedName` with backward-only pointers and 255 bytes at most).
public enum ReverseName {
    /// `2.1.53.10.in-addr.arpa` / the 32 nibbles of `ip6.arpa`, reversed.
    public static func queryName(for address: IPAddress) -> String {
        switch address {
        case .v4(let v4):
            return v4.octets.reversed().map(String.init).joined(separator: ".") + ".in-addr.arpa"
        case .v6(let v6):
            let hex = Array("0123456789abcdef")
            var nibbles: [Character] = []
            for byte in v6.bytes.reversed() {
                nibbles.append(hex[Int(byte & 15)])
                nibbles.append(hex[Int(byte >> 4)])
            }
            return nibbles.map(String.init).joined(separator: ".") + ".ip6.arpa"
        }
    }

    public enum Answer: Equatable, Sendable {
        /// The first PTR record's name (lower case, no trailing dot) and its TTL.
        case name(String, ttl: UInt32)
        /// NXDOMAIN, or NOERROR without a PTR: nobody names this address.
        case none(ttl: UInt32)
        /// SERVFAIL, REFUSED, a truncated answer, or bytes that are not an answer to `id`.
        case failure
    }

    /// Reads the answer to the PTR query `id`.
    public static func answer(_ message: UnsafeRawBufferPointer, id: UInt16) -> Answer {
        guard message.count >= DNSHeader.size, let base = message.baseAddress else { return .failure }
        let flags = DNSHeader.flags(base)
        guard DNSHeader.id(base) == id, flags & 0x8000 != 0, flags & 0x0200 == 0, DNSHeader.questionCount(base) == 1,
              let nameEnd = RecordWalker.skipName(message, at: DNSHeader.size), nameEnd + 4 <= message.count else { return .failure }
        let rcode = flags & 0x000f
        guard rcode == 0 || rcode == 3 else { return .failure }
        var found: Answer?
        var negativeTTL: UInt32 = 300
        let complete = RecordWalker.walk(message, questionEnd: nameEnd + 4) { record in
            if found == nil, record.section == 0, record.type == 12,
               let wire = AliasAnswer.expandedName(message, at: record.dataOffset), let text = dotted(wire) {
                found = .name(text, ttl: RecordWalker.u32(message, record.ttlOffset))
            }
            if record.section == 1, record.type == 6, record.dataLength >= 4 {
                // The SOA's minimum, its last field: how long "no name" may be kept (RFC 2308).
                negativeTTL = min(RecordWalker.u32(message, record.ttlOffset), RecordWalker.u32(message, record.dataOffset + record.dataLength - 4))
            }
        }
        guard complete else { return .failure }
        if rcode == 0, let found { return found }
        return .none(ttl: negativeTTL)
    }

    /// Wire labels as a lower-case dotted name, or nil when a label holds a dot, a blank or a
    /// control byte (such a name is not shown to anyone).
    static func dotted(_ wire: [UInt8]) -> String? {
        var out: [UInt8] = []
        var i = 0
        while i < wire.count, wire[i] != 0 {
            let length = Int(wire[i])
            guard i + 1 + length <= wire.count else { return nil }
            if !out.isEmpty { out.append(0x2e) }
            for byte in wire[(i + 1)..<(i + 1 + length)] {
                guard byte > 0x20, byte < 0x7f, byte != 0x2e, byte != 0x22, byte != 0x5c else { return nil }
                out.append(byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte)
            }
            i += 1 + length
        }
        return out.isEmpty ? nil : String(decoding: out, as: UTF8.self)
    }
}
