/// Builds the answers the relay writes itself, in place in the query's own buffer, so that
/// a reply costs no allocation: FORMERR, SERVFAIL and a truncated (TC=1) answer.
public enum ResponseBuilder {
    /// A minimal OPT record (RFC 6891): root owner, type 41, UDP size 1232, no flags, no options.
    static let optRecord: [UInt8] = [0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]

    /// Turns a query's header into a header-only FORMERR answer (ID, opcode and RD kept).
    /// Returns the answer's length (12). The buffer must hold at least 12 bytes.
    @inline(__always)
    public static func formatError(in buffer: UnsafeMutableRawBufferPointer) -> Int {
        headerOnly(rcode: .formatError, in: buffer)
    }

    /// Turns a query's header into a header-only answer with `rcode` (ID, opcode and RD kept):
    /// FORMERR for what does not parse, NOTIMP for opcodes other than QUERY. Returns 12.
    @inline(__always)
    public static func headerOnly(rcode: ResponseCode, in buffer: UnsafeMutableRawBufferPointer) -> Int {
        let p = buffer.baseAddress!
        let flags = DNSHeader.flags(p)
        DNSHeader.setFlags(p, DNSHeader.responseFlag | (flags & (DNSHeader.opcodeMask | DNSHeader.recursionDesiredFlag)) | rcode.rawValue)
        DNSHeader.setCounts(p, question: 0, answer: 0, authority: 0, additional: 0)
        return DNSHeader.size
    }

    /// Turns a query (header and question, `questionEnd` bytes) into an answer with `rcode`, no
    /// records, and an OPT record when the query had one. Returns its length; the buffer must have
    /// room for `questionEnd + 11` bytes when `withOPT`.
    @inline(__always)
    public static func answer(rcode: ResponseCode, in buffer: UnsafeMutableRawBufferPointer, questionEnd: Int, withOPT: Bool) -> Int {
        let p = buffer.baseAddress!
        let flags = DNSHeader.flags(p)
        DNSHeader.setFlags(p, DNSHeader.responseFlag | (flags & (DNSHeader.opcodeMask | DNSHeader.recursionDesiredFlag)) | DNSHeader.recursionAvailableFlag | rcode.rawValue)
        var length = questionEnd
        if withOPT && buffer.count >= questionEnd + optRecord.count {
            optRecord.withUnsafeBytes { (buffer.baseAddress! + questionEnd).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            length += optRecord.count
            DNSHeader.setCounts(p, question: 1, answer: 0, authority: 0, additional: 1)
        } else {
            DNSHeader.setCounts(p, question: 1, answer: 0, authority: 0, additional: 0)
        }
        return length
    }

    /// Turns a query into a NOERROR answer carrying one A or AAAA record for its name (`address`
    /// is 4 or 16 bytes), with `ttl`, and an OPT record when `withOPT`. Returns the length; the
    /// buffer must hold `questionEnd + 28 + 11` bytes.
    public static func addressAnswer(in buffer: UnsafeMutableRawBufferPointer, questionEnd: Int, address: UnsafeRawBufferPointer,
                                     ttl: UInt32, withOPT: Bool) -> Int {
        let p = buffer.baseAddress!
        let flags = DNSHeader.flags(p)
        DNSHeader.setFlags(p, DNSHeader.responseFlag | (flags & (DNSHeader.opcodeMask | DNSHeader.recursionDesiredFlag)) | DNSHeader.recursionAvailableFlag)
        var o = questionEnd
        func put16(_ v: UInt16) { DNSHeader.setU16(p, o, v); o += 2 }
        put16(0xc00c)  // the question's name
        put16(address.count == 4 ? 1 : 28)
        put16(1)  // IN
        put16(UInt16(ttl >> 16))
        put16(UInt16(ttl & 0xffff))
        put16(UInt16(address.count))
        (p + o).copyMemory(from: address.baseAddress!, byteCount: address.count)
        o += address.count
        if withOPT {
            optRecord.withUnsafeBytes { (p + o).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            o += optRecord.count
        }
        DNSHeader.setCounts(p, question: 1, answer: 1, authority: 0, additional: withOPT ? 1 : 0)
        return o
    }

    /// Starts an answer in place of a query (header and question, `questionEnd` bytes): flags
    /// become a response with `rcode`, no records yet. Returns where the first record goes.
    public static func beginAnswer(rcode: ResponseCode, in buffer: UnsafeMutableRawBufferPointer, questionEnd: Int) -> Int {
        let p = buffer.baseAddress!
        let flags = DNSHeader.flags(p)
        DNSHeader.setFlags(p, DNSHeader.responseFlag | (flags & (DNSHeader.opcodeMask | DNSHeader.recursionDesiredFlag)) | DNSHeader.recursionAvailableFlag | rcode.rawValue)
        DNSHeader.setCounts(p, question: 1, answer: 0, authority: 0, additional: 0)
        return questionEnd
    }

    /// Appends a record for the question's name (a pointer to offset 12) of `type` with `ttl`
    /// and `rdata` at `offset`. Returns the offset after it, or nil when it does not fit in
    /// `buffer` with room left for an OPT record.
    public static func appendRecord(in buffer: UnsafeMutableRawBufferPointer, at offset: Int, type: UInt16, ttl: UInt32,
                                    rdata: UnsafeRawBufferPointer) -> Int? {
        guard offset + 12 + rdata.count + optRecord.count <= buffer.count, rdata.count <= 65535 else { return nil }
        let p = buffer.baseAddress!
        var o = offset
        func put16(_ v: UInt16) { DNSHeader.setU16(p, o, v); o += 2 }
        put16(0xc00c)
        put16(type)
        put16(1)  // IN
        put16(UInt16(ttl >> 16))
        put16(UInt16(ttl & 0xffff))
        put16(UInt16(rdata.count))
        if rdata.count > 0 { (p + o).copyMemory(from: rdata.baseAddress!, byteCount: rdata.count) }
        o += rdata.count
        DNSHeader.setU16(p, 6, DNSHeader.u16(p, 6) + 1)  // ANCOUNT
        return o
    }

    /// Appends a whole record: `owner` in wire form (nil: a pointer to the question's name), then
    /// `body` (type, class, TTL, length and data, as on the wire). Counts are the caller's to
    /// set. Returns the offset after it, or nil when it does not fit with room for an OPT record.
    public static func appendRecord(in buffer: UnsafeMutableRawBufferPointer, at offset: Int, owner: UnsafeRawBufferPointer?,
                                    body: UnsafeRawBufferPointer) -> Int? {
        let ownerLength = owner?.count ?? 2
        guard offset + ownerLength + body.count + optRecord.count <= buffer.count else { return nil }
        let p = buffer.baseAddress!
        if let owner {
            (p + offset).copyMemory(from: owner.baseAddress!, byteCount: owner.count)
        } else {
            DNSHeader.setU16(p, offset, 0xc00c)
        }
        (p + offset + ownerLength).copyMemory(from: body.baseAddress!, byteCount: body.count)
        return offset + ownerLength + body.count
    }

    /// Ends an answer begun with `beginAnswer`: an OPT record when `withOPT`. Returns the length.
    public static func finishAnswer(in buffer: UnsafeMutableRawBufferPointer, at offset: Int, withOPT: Bool) -> Int {
        guard withOPT, offset + optRecord.count <= buffer.count else { return offset }
        let p = buffer.baseAddress!
        optRecord.withUnsafeBytes { (p + offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        DNSHeader.setU16(p, 10, DNSHeader.u16(p, 10) + 1)  // ARCOUNT
        return offset + optRecord.count
    }

    /// Cuts a response down to its header and question with TC=1 (RFC 2181 §9, RFC 6891 §7),
    /// so that the client retries over TCP; with `withOPT`, an OPT record follows (a client that
    /// sent EDNS gets EDNS back). Returns the new length, or nil when the response has no
    /// well-formed question to keep.
    @inline(__always)
    public static func truncate(in buffer: UnsafeMutableRawBufferPointer, withOPT: Bool = false) -> Int? {
        guard let end = Question.end(in: UnsafeRawBufferPointer(buffer)) else { return nil }
        let p = buffer.baseAddress!
        DNSHeader.setFlags(p, DNSHeader.flags(p) | DNSHeader.truncatedFlag)
        if withOPT && buffer.count >= end + optRecord.count {
            optRecord.withUnsafeBytes { (p + end).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            DNSHeader.setCounts(p, question: 1, answer: 0, authority: 0, additional: 1)
            return end + optRecord.count
        }
        DNSHeader.setCounts(p, question: 1, answer: 0, authority: 0, additional: 0)
        return end
    }
}
