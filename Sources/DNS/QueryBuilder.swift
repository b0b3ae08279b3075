import CLDNS

/// Builds query messages with ldns: for tests, probes and tools that need a real query on the wire.
public enum QueryBuilder {
    /// A query for `name` of `type` (a numeric RR type), with RD set and an optional EDNS0 OPT.
    /// Returns nil when ldns rejects the name.
    public static func query(name: String, type: UInt16, id: UInt16, ednsPayloadSize: UInt16? = nil) -> [UInt8]? {
        var packet: UnsafeMutablePointer<ldns_pkt>?
        let status = ldns_pkt_query_new_frm_str(&packet, name, ldns_rr_type(rawValue: UInt32(type)), LDNS_RR_CLASS_IN, UInt16(LDNS_RD))
        guard status == LDNS_STATUS_OK, let packet else { return nil }
        defer { ldns_pkt_free(packet) }
        ldns_pkt_set_id(packet, id)
        if let size = ednsPayloadSize { ldns_pkt_set_edns_udp_size(packet, size) }
        var wire: UnsafeMutablePointer<UInt8>?
        var length = 0
        guard ldns_pkt2wire(&wire, packet, &length) == LDNS_STATUS_OK, let wire else { return nil }
        defer { free(wire) }
        return Array(UnsafeBufferPointer(start: wire, count: length))
    }
}
