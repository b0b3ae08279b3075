import CLDNS

/// Answers for names a `$dnsrewrite` rule turned into aliases: the client asked for N, the
/// relay asked the upstream for the target T, and the client gets N's question, `N CNAME T`,
/// then T's records as the upstream gave them (RFC 1034 §3.6.2), with the upstream's response
/// code. Off the hot path (aliases are rare), so it may allocate; ldns decompresses the
/// upstream's names so that every record can be copied whole.
public enum AliasAnswer {
    /// The query the relay sends for `target` (wire form, dotted) in place of the client's:
    /// the client's header, the target with the client's type and class, an OPT record when the
    /// client sent one. Written at the start of `buffer`; returns (length, questionEnd), or nil
    /// when it does not fit.
    public static func query(target: String, type: UInt16, header: UnsafeRawBufferPointer, withOPT: Bool,
                             into buffer: UnsafeMutableRawBufferPointer) -> (length: Int, questionEnd: Int)? {
        let name = wireName(target)
        let questionEnd = DNSHeader.size + name.count + 4
        let length = questionEnd + (withOPT ? ResponseBuilder.optRecord.count : 0)
        guard length <= buffer.count, header.count >= DNSHeader.size else { return nil }
        let p = buffer.baseAddress!
        p.copyMemory(from: header.baseAddress!, byteCount: DNSHeader.size)
        DNSHeader.setCounts(p, question: 1, answer: 0, authority: 0, additional: withOPT ? 1 : 0)
        name.withUnsafeBytes { (p + DNSHeader.size).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        DNSHeader.setU16(p, questionEnd - 4, type)
        DNSHeader.setU16(p, questionEnd - 2, 1)
        if withOPT {
            ResponseBuilder.optRecord.withUnsafeBytes { (p + questionEnd).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
        return (length, questionEnd)
    }

    /// The client's answer: `original` is the client's header and question, `upstream` the
    /// upstream's answer for the target. Nil when the upstream's answer does not parse.
    public static func compose(original: UnsafeRawBufferPointer, target: String, ttl: UInt32, upstream: UnsafeRawBufferPointer,
                               withOPT: Bool) -> [UInt8]? {
        guard original.count > DNSHeader.size, upstream.count >= DNSHeader.size, let base = upstream.baseAddress else { return nil }
        var packet: UnsafeMutablePointer<ldns_pkt>?
        guard ldns_wire2pkt(&packet, base.assumingMemoryBound(to: UInt8.self), upstream.count) == LDNS_STATUS_OK, let packet else { return nil }
        defer { ldns_pkt_free(packet) }

        var out = [UInt8](original)
        let targetWire = wireName(target)
        // N CNAME T, the name as a pointer to the question.
        out += [0xc0, 0x0c, 0, 5, 0, 1, UInt8(ttl >> 24), UInt8(ttl >> 16 & 0xff), UInt8(ttl >> 8 & 0xff), UInt8(ttl & 0xff),
                UInt8(targetWire.count >> 8), UInt8(targetWire.count & 0xff)]
        out += targetWire
        let answers = records(ldns_pkt_answer(packet), section: LDNS_SECTION_ANSWER)
        let authority = records(ldns_pkt_authority(packet), section: LDNS_SECTION_AUTHORITY)
        out += answers.bytes
        out += authority.bytes
        if withOPT { out += ResponseBuilder.optRecord }
        out.withUnsafeMutableBytes { raw in
            let p = raw.baseAddress!
            // The upstream's RA and response code; never AA (the relay is not the authority).
            let upstreamFlags = DNSHeader.flags(base)
            let flags = DNSHeader.responseFlag | (DNSHeader.flags(p) & (DNSHeader.opcodeMask | DNSHeader.recursionDesiredFlag))
                | (upstreamFlags & (DNSHeader.recursionAvailableFlag | DNSHeader.rcodeMask))
            DNSHeader.setFlags(p, flags)
            DNSHeader.setCounts(p, question: 1, answer: UInt16(1 + answers.count), authority: UInt16(authority.count),
                                additional: withOPT ? 1 : 0)
        }
        return out
    }

    private static func records(_ list: UnsafeMutablePointer<ldns_rr_list>?, section: ldns_pkt_section) -> (bytes: [UInt8], count: Int) {
        guard let list else { return ([], 0) }
        var bytes: [UInt8] = []
        var count = 0
        guard let buffer = ldns_buffer_new(512) else { return ([], 0) }
        defer { ldns_buffer_free(buffer) }
        for i in 0..<ldns_rr_list_rr_count(list) {
            guard let rr = ldns_rr_list_rr(list, i), ldns_rr_get_type(rr) != LDNS_RR_TYPE_OPT else { continue }
            ldns_buffer_clear(buffer)
            guard ldns_rr2buffer_wire(buffer, rr, Int32(section.rawValue)) == LDNS_STATUS_OK else { continue }
            let length = ldns_buffer_position(buffer)
            bytes += UnsafeRawBufferPointer(start: ldns_buffer_begin(buffer), count: length)
            count += 1
        }
        return (bytes, count)
    }

    /// A dotted name (no trailing dot) in uncompressed wire form, root label included; labels
    /// longer than 63 bytes are cut (names from rules and zones are checked before they get here).
    public static func wireName(_ dotted: String) -> [UInt8] {
        var out: [UInt8] = []
        for label in dotted.split(separator: ".") {
            out.append(UInt8(min(label.utf8.count, 63)))
            out += label.utf8.prefix(63)
        }
        out.append(0)
        return out
    }
}
