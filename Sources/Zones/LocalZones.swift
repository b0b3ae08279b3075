import DNS

/// What a local zone says about a question: the response code, the records for the answer
/// section (each with the name it is written under), and for the authority section.
public struct ZoneAnswer: Sendable {
    public struct Entry: Sendable {
        /// The owner written on the wire: nil means "the name asked" (a pointer to the question).
        public var owner: String?
        public var record: ZoneRecord
    }
    public var rcode: ResponseCode
    public var answer: [Entry] = []
    public var authority: [Entry] = []
    /// The zone that answered.
    public var zone: String
}

/// The local zones in service, immutable once built (shared by the workers, replaced whole on
/// reload). Answers are authoritative (AA=1) and follow RFC 1034 §4.3.2 for one zone: exact
/// records, CNAME chains inside the zone (at most 8 links), wildcards per RFC 4592, NXDOMAIN and
/// NODATA with the SOA in the authority section (TTL as RFC 2308 §3 asks).
public final class LocalZones: @unchecked Sendable {
    /// Most specific first, so that a child zone wins over its parent.
    public let zones: [Zone]

    public init(_ zones: [Zone]) {
        self.zones = zones.sorted { $0.origin.count > $1.origin.count }
    }

    public static let empty = LocalZones([])
    public var isEmpty: Bool { zones.isEmpty }

    /// The zone holding `name` (lower-case dotted bytes), without allocating; nil for names no
    /// local zone covers (they go on to the cache and the upstream).
    @inline(__always)
    public func zoneIndex(for name: UnsafeRawBufferPointer) -> Int? {
        for (i, zone) in zones.enumerated() where zone.contains(name) { return i }
        return nil
    }

    /// The answer of zone `index` for `name` and `type`.
    public func answer(zone index: Int, name: String, type: UInt16) -> ZoneAnswer {
        let zone = zones[index]
        var result = ZoneAnswer(rcode: .noError, zone: zone.origin)
        var current = name
        for _ in 0..<8 {
            let owner: String? = current == name ? nil : current
            let records: [ZoneRecord]
            if let exact = zone.nodes[current] {
                records = exact
            } else if zone.nonTerminals.contains(current) {
                return negative(result, zone: zone, rcode: .noError)
            } else if let wild = wildcard(for: current, in: zone) {
                records = wild  // synthesized under the name asked (RFC 4592 §3.3.1)
            } else {
                return negative(result, zone: zone, rcode: .nameError)
            }
            let matching = records.filter { $0.type == type || (type == 255 && $0.type != 5) }
            if !matching.isEmpty {
                result.answer += matching.map { ZoneAnswer.Entry(owner: owner, record: $0) }
                return result
            }
            guard type != 5, let cname = records.first(where: { $0.type == 5 }) else {
                return negative(result, zone: zone, rcode: .noError)
            }
            result.answer.append(ZoneAnswer.Entry(owner: owner, record: cname))
            // A target outside the zone is the client's resolver's to follow (RFC 1034 §4.3.2 step 3a).
            guard let target = cname.target, Zone.isAtOrBelow(target, zone.origin),
                  !result.answer.contains(where: { ($0.owner ?? name) == target }) else { return result }
            current = target
        }
        return result
    }

    /// The records of the wildcard that covers `name`: `*.` plus its closest encloser, the
    /// longest existing ancestor (RFC 4592 §3.3.1); nil when there is none.
    private func wildcard(for name: String, in zone: Zone) -> [ZoneRecord]? {
        var encloser = name
        while let dot = encloser.firstIndex(of: "."), encloser != zone.origin {
            encloser = String(encloser[encloser.index(after: dot)...])
            if zone.nodes[encloser] != nil || zone.nonTerminals.contains(encloser) || encloser == zone.origin {
                return zone.nodes["*." + encloser]
            }
        }
        return nil
    }

    private func negative(_ partial: ZoneAnswer, zone: Zone, rcode: ResponseCode) -> ZoneAnswer {
        var result = partial
        // NXDOMAIN after a CNAME is still NXDOMAIN (RFC 6604); the SOA says for how long.
        result.rcode = rcode
        var soa = zone.soa
        let minimum = soa.body.count >= 4 ? soa.body.suffix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) } : soa.ttl
        let ttl = min(soa.ttl, minimum)
        soa.body[4] = UInt8(ttl >> 24); soa.body[5] = UInt8(ttl >> 16 & 0xff); soa.body[6] = UInt8(ttl >> 8 & 0xff); soa.body[7] = UInt8(ttl & 0xff)
        result.authority = [ZoneAnswer.Entry(owner: zone.origin, record: soa)]
        return result
    }
}
