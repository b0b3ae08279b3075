import DNS

/// One authoritative zone, read from one zone file: its apex (the SOA's owner), its records by
/// owner name, and the names that exist only because something lies below them (empty
/// non-terminals, RFC 4592 §2.2.2), so that they answer NODATA rather than NXDOMAIN.
public struct Zone: Sendable {
    public let origin: String
    public let file: String
    public let soa: ZoneRecord
    let nodes: [String: [ZoneRecord]]
    let nonTerminals: Set<String>
    /// The origin in wire form, for the allocation-free "is this name mine?" test.
    let originBytes: [UInt8]

    /// Builds the zone and checks it: one SOA, at the apex; every name inside the zone; a CNAME
    /// alone at its name (RFC 1034 §3.6.2). Errors name the record's file and line.
    public init(file: String, records: [ZoneRecord]) throws(ZoneFileError) {
        let soas = records.filter { $0.type == 6 }
        guard let soa = soas.first else { throw ZoneFileError(file: file, line: nil, reason: "no SOA record: a zone needs one at its apex") }
        if soas.count > 1 { throw ZoneFileError(file: soas[1].file, line: soas[1].line, reason: "a second SOA record (a zone has one)") }
        let origin = soa.owner
        var nodes: [String: [ZoneRecord]] = [:]
        var nonTerminals: Set<String> = []
        for record in records {
            guard Self.isAtOrBelow(record.owner, origin) else {
                throw ZoneFileError(file: record.file, line: record.line, reason: "'\(record.owner)' is outside the zone \(origin)")
            }
            nodes[record.owner, default: []].append(record)
            var name = record.owner
            while name != origin, let dot = name.firstIndex(of: ".") {
                name = String(name[name.index(after: dot)...])
                if name != origin { nonTerminals.insert(name) }
            }
        }
        for (owner, set) in nodes where set.contains(where: { $0.type == 5 }) && set.contains(where: { $0.type != 5 && $0.type != 46 && $0.type != 47 }) {
            let cname = set.first { $0.type == 5 }!
            throw ZoneFileError(file: cname.file, line: cname.line, reason: "'\(owner)' has a CNAME and other records (RFC 1034 §3.6.2)")
        }
        self.origin = origin
        self.file = file
        self.soa = soa
        self.nodes = nodes
        self.nonTerminals = nonTerminals.subtracting(nodes.keys)
        self.originBytes = Array(origin.utf8)
    }

    public var recordCount: Int { nodes.values.reduce(0) { $0 + $1.count } }

    static func isAtOrBelow(_ name: String, _ origin: String) -> Bool {
        origin.isEmpty || name == origin || name.hasSuffix("." + origin)
    }

    /// Whether `name` (lower-case dotted bytes) is the apex or below it. No allocation.
    @inline(__always)
    func contains(_ name: UnsafeRawBufferPointer) -> Bool {
        let o = originBytes.count
        if o == 0 { return true }
        guard name.count >= o else { return false }
        let start = name.count - o
        for i in 0..<o where name[start + i] != originBytes[i] { return false }
        return start == 0 || name[start - 1] == UInt8(ascii: ".")
    }
}
