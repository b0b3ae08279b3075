import DNS

extension ZoneAnswer {
    /// Writes the answer over the query in `buffer` (header and question, `questionEnd` bytes):
    /// AA=1, the response code, the records, an OPT record when the query had one. An answer
    /// longer than `limit` goes out with TC=1 and no records (the client asks again over TCP).
    public func write(into buffer: UnsafeMutableRawBufferPointer, questionEnd: Int, withOPT: Bool, limit: Int,
                      authoritative: Bool = true) -> Int {
        let room = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<min(buffer.count, max(limit, 512))])
        var offset = ResponseBuilder.beginAnswer(rcode: rcode, in: room, questionEnd: questionEnd)
        let p = room.baseAddress!
        if authoritative { DNSHeader.setFlags(p, DNSHeader.flags(p) | DNSHeader.authoritativeFlag) }
        var counts = (answer: 0, authority: 0)
        for (section, entries) in [(0, answer), (1, authority)] {
            for entry in entries {
                let written: Int? = entry.record.body.withUnsafeBytes { body in
                    if let owner = entry.owner {
                        let wire = AliasAnswer.wireName(owner)
                        return wire.withUnsafeBytes { ResponseBuilder.appendRecord(in: room, at: offset, owner: $0, body: body) }
                    }
                    return ResponseBuilder.appendRecord(in: room, at: offset, owner: nil, body: body)
                }
                guard let next = written else {
                    DNSHeader.setCounts(p, question: 1, answer: 0, authority: 0, additional: 0)
                    return ResponseBuilder.truncate(in: room, withOPT: withOPT) ?? questionEnd
                }
                offset = next
                if section == 0 { counts.answer += 1 } else { counts.authority += 1 }
            }
        }
        DNSHeader.setCounts(p, question: 1, answer: UInt16(counts.answer), authority: UInt16(counts.authority), additional: 0)
        return ResponseBuilder.finishAnswer(in: room, at: offset, withOPT: withOPT)
    }

    /// This answer for `target`, given to a client that asked for an alias of it: `name CNAME
    /// target` first (under the name asked), the target's records under the target's name.
    public func behindAlias(target: String, ttl: UInt32) -> ZoneAnswer {
        var result = self
        for i in result.answer.indices where result.answer[i].owner == nil { result.answer[i].owner = target }
        let rdata = AliasAnswer.wireName(target)
        let body: [UInt8] = [0, 5, 0, 1, UInt8(ttl >> 24), UInt8(ttl >> 16 & 0xff), UInt8(ttl >> 8 & 0xff), UInt8(ttl & 0xff),
                             UInt8(rdata.count >> 8), UInt8(rdata.count & 0xff)] + rdata
        let cname = ZoneRecord(owner: "", type: 5, ttl: ttl, body: body, target: target, file: "", line: 0)
        result.answer.insert(ZoneAnswer.Entry(owner: nil, record: cname), at: 0)
        return result
    }
}
