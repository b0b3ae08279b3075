/// Answers for names a `$dnsrewrite` rule turned into aliases: the client asked for N, the
/// relay asked the upstream for the target T, and the client gets N's question, `N CNAME T`,
/// then T's records as the upstream gave them (RFC 1034 §3.6.2), with the upstream's response
/// code. Off the hot path (aliases are rare), so it may allocate.
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
    /// upstream's answer for the target. Nil when the upstream's answer does not hold together.
    ///
    /// The upstream's answer and authority records are copied with every name written out whole
    /// (owner names, and the names inside NS, CNAME, PTR, DNAME, MX, SRV and SOA data), since
    /// their compression pointers point into the upstream's message, not ours. This used ldns,
    /// whose parser leaked on records a hostile upstream can send (TSIG records out of place:
    /// found by the `answer` fuzz target, issue 13); the walk here has `RecordWalker`'s bounds.
    public static func compose(original: UnsafeRawBufferPointer, target: String, ttl: UInt32, upstream: UnsafeRawBufferPointer,
                               withOPT: Bool) -> [UInt8]? {
        guard original.count > DNSHeader.size, upstream.count >= DNSHeader.size, let base = upstream.baseAddress,
              DNSHeader.questionCount(base) == 1, let upstreamQuestionEnd = Question.end(in: upstream) else { return nil }
        var out = [UInt8](original)
        let targetWire = wireName(target)
        // N CNAME T, the name as a pointer to the question.
        out += [0xc0, 0x0c, 0, 5, 0, 1, UInt8(ttl >> 24), UInt8(ttl >> 16 & 0xff), UInt8(ttl >> 8 & 0xff), UInt8(ttl & 0xff),
                UInt8(targetWire.count >> 8), UInt8(targetWire.count & 0xff)]
        out += targetWire
        var counts = [0, 0]
        var sound = true
        let walked = RecordWalker.walk(upstream, questionEnd: upstreamQuestionEnd) { record in
            guard sound, record.section < 2, record.type != 41 else { return }
            guard let copied = copy(record, from: upstream) else {
                sound = false
                return
            }
            out += copied
            counts[record.section] += 1
        }
        guard walked, sound else { return nil }
        if withOPT { out += ResponseBuilder.optRecord }
        out.withUnsafeMutableBytes { raw in
            let p = raw.baseAddress!
            // The upstream's RA and response code; never AA (the relay is not the authority).
            let upstreamFlags = DNSHeader.flags(base)
            let flags = DNSHeader.responseFlag | (DNSHeader.flags(p) & (DNSHeader.opcodeMask | DNSHeader.recursionDesiredFlag))
                | (upstreamFlags & (DNSHeader.recursionAvailableFlag | DNSHeader.rcodeMask))
            DNSHeader.setFlags(p, flags)
            DNSHeader.setCounts(p, question: 1, answer: UInt16(1 + counts[0]), authority: UInt16(counts[1]),
                                additional: withOPT ? 1 : 0)
        }
        return out
    }

    /// One record with its owner name and the names in its data written out whole.
    static func copy(_ record: RecordWalker.Record, from message: UnsafeRawBufferPointer) -> [UInt8]? {
        guard var out = expandedName(message, at: record.nameOffset) else { return nil }
        // TYPE, CLASS, TTL as they are; RDLENGTH once the data is written.
        out += message[(record.ttlOffset - 4)..<(record.ttlOffset + 4)]
        let start = record.dataOffset, end = record.dataOffset + record.dataLength
        var data: [UInt8]
        switch record.type {
        case 2, 5, 12, 39:  // NS, CNAME, PTR, DNAME
            guard let name = expandedName(message, at: start) else { return nil }
            data = name
        case 15, 33:  // MX (preference), SRV (priority, weight, port), then a name
            let fixed = record.type == 15 ? 2 : 6
            guard let name = expandedName(message, at: start + fixed) else { return nil }
            data = Array(message[start..<(start + fixed)]) + name
        case 6:  // SOA: two names, then five 32-bit fields
            guard let mname = expandedName(message, at: start), let afterM = RecordWalker.skipName(message, at: start),
                  let rname = expandedName(message, at: afterM) else { return nil }
            data = mname + rname + Array(message[(end - 20)..<end])
        default:
            data = Array(message[start..<end])
        }
        guard data.count <= 65535 else { return nil }
        out += [UInt8(data.count >> 8), UInt8(data.count & 0xff)]
        out += data
        return out
    }

    /// The name at `offset` with its compression pointers followed, as uncompressed wire bytes.
    /// The same bounds as `RecordWalker.skipName`: pointers strictly backwards, ≤ 255 bytes.
    static func expandedName(_ message: UnsafeRawBufferPointer, at start: Int) -> [UInt8]? {
        var out: [UInt8] = []
        var offset = start
        while offset < message.count {
            let length = Int(message[offset])
            if length == 0 {
                out.append(0)
                return out
            }
            if length & 0xc0 == 0xc0 {
                guard offset + 2 <= message.count else { return nil }
                let target = (length & 0x3f) << 8 | Int(message[offset + 1])
                guard target >= DNSHeader.size, target < offset else { return nil }
                offset = target
                continue
            }
            guard length <= 63, offset + 1 + length <= message.count, out.count + length + 2 <= 255 else { return nil }
            out += message[offset..<(offset + 1 + length)]
            offset += 1 + length
        }
        return nil
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
