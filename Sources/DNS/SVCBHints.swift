import CLDNS
import Glibc

/// Takes address hints out of the SVCB (64) and HTTPS (65) records of an upstream answer
/// (RFC 9460 `ipv4hint`, `ipv6hint`): when the rules answer a name's A or AAAA themselves (or
/// block it), its HTTPS record must not hand the client the upstream's addresses instead.
///
/// Rewritten with ldns: taking bytes out of a record moves every name after it, and any
/// compression pointer into what moved, so the message is parsed whole and written again (names
/// compressed anew, counts and lengths recomputed). This runs only for the answers it concerns.
public enum SVCBHints {
    public struct Keys: OptionSet, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let ipv4 = Keys(rawValue: 1)
        public static let ipv6 = Keys(rawValue: 2)
    }

    /// Removes `keys` from the SVCB and HTTPS records of the message in the first `length` bytes
    /// of `buffer`; returns its new length (the same when nothing was there to remove), or nil
    /// when the message cannot be read or the result would not fit.
    public static func strip(_ keys: Keys, in buffer: UnsafeMutableRawBufferPointer, length: Int) -> Int? {
        guard !keys.isEmpty else { return length }
        var packet: UnsafeMutablePointer<ldns_pkt>?
        guard ldns_wire2pkt(&packet, buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), length) == LDNS_STATUS_OK, let packet else {
            return nil
        }
        defer { ldns_pkt_free(packet) }
        var changed = false
        for list in [ldns_pkt_answer(packet), ldns_pkt_authority(packet), ldns_pkt_additional(packet)] {
            guard let list else { continue }
            for i in 0..<ldns_rr_list_rr_count(list) {
                guard let rr = ldns_rr_list_rr(list, i) else { continue }
                let type = ldns_rr_get_type(rr).rawValue
                guard type == 64 || type == 65 else { continue }
                if strip(keys, in: rr) { changed = true }
            }
        }
        guard changed else { return length }
        var wire: UnsafeMutablePointer<UInt8>?
        var size = 0
        guard ldns_pkt2wire(&wire, packet, &size) == LDNS_STATUS_OK, let wire else { return nil }
        defer { free(wire) }
        guard size <= buffer.count else { return nil }
        buffer.baseAddress!.copyMemory(from: wire, byteCount: size)
        return size
    }

    /// Rewrites one record's parameters; true when something was removed. ldns holds them as one
    /// SVCPARAMS field when built with SVCB support, else the whole RDATA as one unknown field.
    private static func strip(_ keys: Keys, in rr: UnsafeMutablePointer<ldns_rr>) -> Bool {
        let count = ldns_rr_rd_count(rr)
        let index: Int
        let paramsStart: Int
        if count == 3, let field = ldns_rr_rdf(rr, 2), ldns_rdf_get_type(field) == LDNS_RDF_TYPE_SVCPARAMS {
            index = 2
            paramsStart = 0
        } else if count == 1, let field = ldns_rr_rdf(rr, 0) {
            // Priority, then the target name (never compressed: RFC 9460 §2.2), then the parameters.
            let data = UnsafeRawBufferPointer(start: ldns_rdf_data(field), count: ldns_rdf_size(field))
            var offset = 2
            while offset < data.count, data[offset] != 0 {
                guard data[offset] < 64 else { return false }
                offset += 1 + Int(data[offset])
            }
            guard offset < data.count else { return false }
            index = 0
            paramsStart = offset + 1
        } else {
            return false
        }
        let field = ldns_rr_rdf(rr, index)!
        let data = UnsafeRawBufferPointer(start: ldns_rdf_data(field), count: ldns_rdf_size(field))
        var kept: [UInt8] = Array(data[0..<paramsStart])
        var removed = false
        var offset = paramsStart
        while offset + 4 <= data.count {
            let key = UInt16(data[offset]) << 8 | UInt16(data[offset + 1])
            let size = Int(data[offset + 2]) << 8 | Int(data[offset + 3])
            guard offset + 4 + size <= data.count else { return false }
            if (key == 4 && keys.contains(.ipv4)) || (key == 6 && keys.contains(.ipv6)) {
                removed = true
            } else {
                kept += data[offset..<(offset + 4 + size)]
            }
            offset += 4 + size
        }
        guard removed, offset == data.count else { return false }
        if kept.isEmpty {
            // Every parameter went: the SVCPARAMS field goes too.
            if let old = ldns_rr_pop_rdf(rr) { ldns_rdf_deep_free(old) }
            return true
        }
        let replacement = kept.withUnsafeBytes { ldns_rdf_new_frm_data(ldns_rdf_get_type(field), $0.count, $0.baseAddress) }
        guard let replacement else { return false }
        if let old = ldns_rr_set_rdf(rr, replacement, index) { ldns_rdf_deep_free(old) }
        return true
    }
}
