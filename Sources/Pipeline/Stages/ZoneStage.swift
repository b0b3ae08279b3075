import DNS
import Zones

/// Local zones: the LAN's own names are its own data, answered authoritatively before any rule
/// (docs/DESIGN.md). Finding the zone allocates nothing; building an answer does (zone names are
/// the LAN's few local names).
public struct ZoneStage: Sendable {
    /// The zones in force; shared read-only between workers, replaced whole on reload.
    public var zones: LocalZones
    /// TTL of the CNAME a `$dnsrewrite` alias into a zone gets.
    public var aliasTTL: UInt32

    public init(zones: LocalZones, aliasTTL: UInt32) {
        self.zones = zones
        self.aliasTTL = aliasTTL
    }

    /// The zone's answer for `name`, written over the query in `buffer` (at most `limit` bytes,
    /// else TC=1), and the zone's name for `explain`; nil when no local zone holds the name.
    @inline(__always)
    func answer(name: UnsafeRawBufferPointer, query: ParsedQuery, in buffer: UnsafeMutableRawBufferPointer, limit: Int) -> (length: Int, zone: String)? {
        guard !zones.isEmpty, let zone = zones.zoneIndex(for: name) else { return nil }
        let answer = zones.answer(zone: zone, name: String(decoding: name, as: UTF8.self), type: query.type)
        return (answer.write(into: buffer, questionEnd: query.questionEnd, withOPT: query.hasEDNS, limit: limit), answer.zone)
    }

    /// A `$dnsrewrite` alias whose target lies in a local zone: `name CNAME target` and the zone's
    /// answer for the target (not authoritative: a rule made the alias). nil when the target is
    /// outside every local zone (it is then asked upstream).
    func aliasAnswer(target: String, query: ParsedQuery, in buffer: UnsafeMutableRawBufferPointer, limit: Int) -> Int? {
        guard !zones.isEmpty else { return nil }
        var bytes = Array(target.utf8)
        guard let zone = bytes.withUnsafeMutableBytes({ zones.zoneIndex(for: UnsafeRawBufferPointer($0)) }) else { return nil }
        let answer = zones.answer(zone: zone, name: target, type: query.type).behindAlias(target: target, ttl: aliasTTL)
        return answer.write(into: buffer, questionEnd: query.questionEnd, withOPT: query.hasEDNS, limit: limit, authoritative: false)
    }
}
