import Testing
@testable import DNS

/// Issue 13: what the outside test sent, as regression cases, and the bounds of the record walk.
@Suite struct HostileQueryTests {
    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            out.append(UInt8(hex[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    /// Finding 2: a 39-byte query with two TSIG records leaked ~125 bytes inside ldns_wire2pkt
    /// each time. The parser no longer uses ldns.
    @Test func theTSIGDatagramDoesNotLeak() {
        let datagram = Self.bytes("00010077000100000000ffff00000000000000fa00000000ffff00000000fa0000000000000000")
        #expect(datagram.count == 39)
        let verdict = datagram.withUnsafeBytes { QueryParser.classify($0) }
        // ARCOUNT says 65,535 and two records follow: a format error, answered without ldns.
        #expect(verdict == .formatError(.unparsable), "\(verdict)")
        // The same records behind an ordinary header (opcode QUERY, one question).
        var query = QueryBuilder.query(name: "a.lab.test", type: 1, id: 7)!
        query[11] = 2  // ARCOUNT 2
        query += Self.bytes("00" + "00fa" + "00ff" + "00000000" + "0000") + Self.bytes("00" + "00fa" + "00ff" + "00000000" + "0000")
        guard case .query = query.withUnsafeBytes({ QueryParser.classify($0) }) else {
            Issue.record("two empty TSIG records in the additional section are well-formed wire data")
            return
        }
        // The leak itself is checked where a leak checker runs: this datagram is in the
        // query-parser fuzz corpus (Fuzz/corpus/query), replayed under LeakSanitizer in CI.
    }

    /// Finding 8: opcodes other than QUERY are answered NOTIMP, never from the cache.
    @Test(arguments: [1, 2, 4, 5, 15])
    func otherOpcodesAreNotImplemented(opcode: Int) {
        var query = QueryBuilder.query(name: "www.lab.test", type: 1, id: 9)!
        query[2] = (query[2] & 0x87) | UInt8(opcode << 3)
        #expect(query.withUnsafeBytes { QueryParser.classify($0) } == .notImplemented(opcode: UInt8(opcode)))
        var buffer = query
        let length = buffer.withUnsafeMutableBytes { ResponseBuilder.headerOnly(rcode: .notImplemented, in: $0) }
        #expect(length == 12)
        buffer.withUnsafeBytes { p in
            #expect(DNSHeader.rcode(p.baseAddress!) == .notImplemented)
            #expect((DNSHeader.flags(p.baseAddress!) & DNSHeader.opcodeMask) >> 11 == UInt16(opcode))
        }
    }

    static let opt: [UInt8] = [0, 0, 41, 0x10, 0x00, 0, 0, 0x80, 0, 0, 0]  // 4096, DO

    static func withAdditional(_ records: [UInt8], count: UInt8) -> [UInt8] {
        var q = QueryBuilder.query(name: "www.lab.test", type: 1, id: 3)!
        q[11] = count
        return q + records
    }

    @Test func theOPTRecordIsRead() {
        guard case .query(let q) = Self.withAdditional(Self.opt, count: 1).withUnsafeBytes({ QueryParser.classify($0) }) else {
            Issue.record("not a query")
            return
        }
        #expect(q.hasEDNS && q.udpPayloadSize == 4096 && q.cacheFlags & 1 == 1)
        var small = Self.opt
        small[3] = 0; small[4] = 100  // a payload size below 512 counts as 512
        guard case .query(let s) = Self.withAdditional(small, count: 1).withUnsafeBytes({ QueryParser.classify($0) }) else {
            Issue.record("not a query")
            return
        }
        #expect(s.udpPayloadSize == 512)
    }

    static var fiveHundredLabels: [UInt8] {
        var q = Array(QueryBuilder.query(name: "a.lab.test", type: 1, id: 1)!.prefix(12))
        for _ in 0..<130 { q += [1, 0x61] }
        return q + [0, 0, 1, 0, 1]
    }

    @Test(arguments: [
        ("two OPT records", withAdditional(opt + opt, count: 2)),
        ("an OPT record not owned by the root", withAdditional([1, 0x61, 0] + opt.dropFirst(1), count: 1)),
        ("ARCOUNT larger than the records", withAdditional(opt, count: 3)),
        ("a record's data past the end", withAdditional([0, 0, 16, 0, 1, 0, 0, 0, 0, 0, 40, 1, 2], count: 1)),
        ("a record whose owner points at itself", withAdditional([0xc0, 30, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4], count: 1)),
        ("a record whose owner points forward", withAdditional([0xc0, 40, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4], count: 1)),
        ("an A record of 3 bytes", withAdditional([0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 3, 1, 2, 3], count: 1)),
        ("a name over 255 bytes", fiveHundredLabels),
    ])
    func malformedQueriesAreFormatErrors(what: String, bytes: [UInt8]) {
        #expect(bytes.withUnsafeBytes { QueryParser.classify($0) } == .formatError(.unparsable), "\(what)")
    }
}

@Suite struct AnswerCheckTests {
    /// An answer to www.lab.test A with `records` appended and ANCOUNT `count`.
    static func answer(_ records: [UInt8], count: UInt8) -> [UInt8] {
        var a = QueryBuilder.query(name: "www.lab.test", type: 1, id: 5)!
        a[2] |= 0x80
        a[7] = count
        return a + records
    }

    static let questionEnd = 12 + 14 + 4

    static func a(ttl: UInt32) -> [UInt8] {
        [0xc0, 0x0c, 0, 1, 0, 1, UInt8(ttl >> 24), UInt8(ttl >> 16 & 0xff), UInt8(ttl >> 8 & 0xff), UInt8(ttl & 0xff), 0, 4, 10, 53, 2, 80]
    }

    static func check(_ bytes: inout [UInt8], maxTTL: UInt32 = 86_400) -> Bool {
        bytes.withUnsafeMutableBytes { AnswerCheck.check($0, questionEnd: questionEnd, maxTTL: maxTTL) }
    }

    static func ttl(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes.withUnsafeBytes { RecordWalker.u32($0, offset) }
    }

    /// Finding 7: a TTL with the top bit set is 0 (RFC 2181 §8); others are capped at max_ttl.
    @Test func ttlsAreClampedInPlace() {
        var huge = Self.answer(Self.a(ttl: 0xffff_ffff), count: 1)
        #expect(Self.check(&huge))
        #expect(Self.ttl(huge, at: Self.questionEnd + 6) == 0)
        var long = Self.answer(Self.a(ttl: 0x7fff_ffff), count: 1)
        #expect(Self.check(&long))
        #expect(Self.ttl(long, at: Self.questionEnd + 6) == 86_400)
        var fine = Self.answer(Self.a(ttl: 300), count: 1)
        #expect(Self.check(&fine))
        #expect(Self.ttl(fine, at: Self.questionEnd + 6) == 300)
        // An OPT record's "TTL" is flags (DO), never touched.
        var withOPT = Self.answer(Self.a(ttl: 60) + [0, 0, 41, 0x04, 0xd0, 0x80, 0x00, 0x80, 0x00, 0, 0], count: 1)
        withOPT[11] = 1
        #expect(Self.check(&withOPT))
        #expect(Self.ttl(withOPT, at: Self.questionEnd + 16 + 5) == 0x8000_8000)
    }

    static let cname: [UInt8] = [0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 0x0c]

    /// Finding 6: answers that do not hold together are refused.
    @Test(arguments: [
        ("rdlength past the end", answer([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 200, 10, 53, 2, 80], count: 1)),
        ("ANCOUNT larger than the records", answer(a(ttl: 60), count: 3)),
        ("an owner that points at itself", answer([0xc0, 30, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 53, 2, 80], count: 1)),
        ("two owners pointing at each other", answer([0xc0, 32, 0xc0, 30, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 53, 2, 80], count: 1)),
        ("a CNAME whose target points at itself", answer([0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 42], count: 1)),
        ("a CNAME with bytes after its name", answer([0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0, 60, 0, 3, 0xc0, 0x0c, 0], count: 1)),
        ("an A record of 5 bytes", answer([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 5, 10, 53, 2, 80, 1], count: 1)),
        ("an MX without its name", answer([0xc0, 0x0c, 0, 15, 0, 1, 0, 0, 0, 60, 0, 2, 0, 10], count: 1)),
        ("an SOA cut short", answer([0xc0, 0x0c, 0, 6, 0, 1, 0, 0, 0, 60, 0, 6, 0xc0, 0x0c, 0xc0, 0x0c, 0, 1], count: 1)),
        ("a label type 0x40", answer([0x41, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 53, 2, 80], count: 1)),
    ])
    func malformedAnswersAreRefused(what: String, bytes: [UInt8]) {
        var copy = bytes
        #expect(!Self.check(&copy), "\(what)")
    }

    @Test func wellFormedAnswersPass() {
        var chain = Self.answer(Self.cname + Self.a(ttl: 60), count: 2)
        #expect(Self.check(&chain))
        var soa = Self.answer([0xc0, 0x0c, 0, 6, 0, 1, 0, 0, 0, 60, 0, 24, 0xc0, 0x0c, 0xc0, 0x0c] + [UInt8](repeating: 0, count: 20), count: 0)
        soa[9] = 1  // in the authority section
        #expect(Self.check(&soa))
        var opaque = Self.answer([0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 60, 0, 3, 2, 0x68, 0x69], count: 1)  // TXT
        #expect(Self.check(&opaque))
    }

    /// Every prefix and many random mutations of a real answer: no crash, no out-of-bounds read.
    @Test func mutationsNeverCrash() {
        let base = Self.answer(Self.cname + Self.a(ttl: 60), count: 2)
        var seed: UInt64 = 0x13
        func next() -> UInt64 { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return seed >> 33 }
        for length in 0...base.count {
            var prefix = Array(base.prefix(length))
            if prefix.count >= Self.questionEnd { _ = Self.check(&prefix) }
        }
        for _ in 0..<20_000 {
            var m = base
            for _ in 0..<(1 + Int(next() % 4)) { m[Int(next() % UInt64(m.count))] = UInt8(truncatingIfNeeded: next()) }
            _ = Self.check(&m)
            _ = m.withUnsafeBytes { QueryParser.classify($0) }
        }
    }
}
