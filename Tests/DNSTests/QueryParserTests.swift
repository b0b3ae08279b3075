import Testing
@testable import DNS

/// The message layer on bad and good input, table-driven.
@Suite struct QueryParserTests {
    static let query = QueryBuilder.query(name: "www.lab.test", type: 1, id: 0x1234)!
    static let ednsQuery = QueryBuilder.query(name: "www.lab.test", type: 28, id: 0x4321, ednsPayloadSize: 1232)!

    static func with(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) -> QueryVerdict) -> QueryVerdict {
        bytes.withUnsafeBytes(body)
    }

    static func classify(_ bytes: [UInt8]) -> QueryVerdict { with(bytes) { QueryParser.classify($0) } }

    @Test func aPlainQueryParses() throws {
        guard case .query(let q) = Self.classify(Self.query) else {
            Issue.record("not a query")
            return
        }
        #expect(q.type == 1)
        #expect(!q.hasEDNS)
        #expect(q.udpPayloadSize == 512)
        #expect(q.questionEnd == 12 + 14 + 4)
    }

    @Test func ednsIsSeen() {
        guard case .query(let q) = Self.classify(Self.ednsQuery) else {
            Issue.record("not a query")
            return
        }
        #expect(q.hasEDNS)
        #expect(q.udpPayloadSize == 1232)
        #expect(q.type == 28)
    }

    static var qr: [UInt8] { var q = query; q[2] |= 0x80; return q }
    static var qd2: [UInt8] { var q = query; q[5] = 2; return q }
    static var qd0: [UInt8] { var q = query; q[5] = 0; return q }
    static var cut: [UInt8] { Array(query.prefix(20)) }
    static var labelTooLong: [UInt8] { var q = query; q[12] = 64; return q }
    static var pointer: [UInt8] { Array(query.prefix(12)) + [0xc0, 0x00, 0, 1, 0, 1] }
    static var ancountLies: [UInt8] { var q = query; q[7] = 3; return q }

    @Test(arguments: [
        ([], QueryVerdict.drop(.tooShort)),
        ([UInt8](repeating: 0xab, count: 11), .drop(.tooShort)),
        (qr, .drop(.isResponse)),
        (qd2, .formatError(.questionCount)),
        (qd0, .formatError(.questionCount)),
        (cut, .formatError(.unparsable)),
        (labelTooLong, .formatError(.unparsable)),
        (pointer, .formatError(.unparsable)),
        (ancountLies, .formatError(.unparsable)),
        ([0x12, 0x34, 0x01, 0x00, 0x00, 0x01] + [UInt8](repeating: 0xff, count: 40), .formatError(.unparsable)),
    ])
    func badInput(bytes: [UInt8], expected: QueryVerdict) {
        #expect(Self.classify(bytes) == expected)
    }

    /// Random garbage never crashes and is never taken for a forwardable query unless it is one.
    @Test func randomGarbageIsClassifiedSafely() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let length = Int.random(in: 0..<300, using: &generator)
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if case .query(let q) = Self.classify(bytes) {
                #expect(q.questionEnd <= bytes.count)
            }
        }
    }
}

@Suite struct ResponseBuilderTests {
    @Test func formatErrorKeepsTheIDAndClearsTheCounts() {
        var bytes = QueryParserTests.query
        let length = bytes.withUnsafeMutableBytes { ResponseBuilder.formatError(in: $0) }
        #expect(length == 12)
        bytes.withUnsafeBytes { p in
            #expect(DNSHeader.id(p.baseAddress!) == 0x1234)
            #expect(DNSHeader.isResponse(p.baseAddress!))
            #expect(DNSHeader.rcode(p.baseAddress!) == .formatError)
            #expect(DNSHeader.questionCount(p.baseAddress!) == 0)
            #expect(DNSHeader.flags(p.baseAddress!) & DNSHeader.recursionDesiredFlag != 0)
        }
    }

    @Test(arguments: [false, true])
    func serverFailureKeepsTheQuestion(withOPT: Bool) {
        let query = withOPT ? QueryParserTests.ednsQuery : QueryParserTests.query
        guard case .query(let parsed) = QueryParserTests.classify(query) else {
            Issue.record("not a query")
            return
        }
        var buffer = query + [UInt8](repeating: 0, count: 32)
        let length = buffer.withUnsafeMutableBytes {
            ResponseBuilder.answer(rcode: .serverFailure, in: $0, questionEnd: parsed.questionEnd, withOPT: parsed.hasEDNS)
        }
        let answer = Array(buffer.prefix(length))
        #expect(length == parsed.questionEnd + (withOPT ? 11 : 0))
        answer.withUnsafeBytes { p in
            #expect(DNSHeader.rcode(p.baseAddress!) == .serverFailure)
            #expect(DNSHeader.isResponse(p.baseAddress!))
            #expect(DNSHeader.additionalCount(p.baseAddress!) == (withOPT ? 1 : 0))
        }
        // The question section is the query's, byte for byte.
        #expect(Array(answer[12..<parsed.questionEnd]) == Array(query[12..<parsed.questionEnd]))
    }

    @Test func truncationKeepsHeaderAndQuestion() {
        var response = QueryParserTests.query + [0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 53, 2, 80]
        response[2] |= 0x80
        response[7] = 1
        let length = response.withUnsafeMutableBytes { ResponseBuilder.truncate(in: $0) }
        #expect(length == 30)
        response.withUnsafeBytes { p in
            #expect(DNSHeader.flags(p.baseAddress!) & DNSHeader.truncatedFlag != 0)
            #expect(DNSHeader.answerCount(p.baseAddress!) == 0)
        }
        var withOPT = QueryParserTests.ednsQuery + [UInt8](repeating: 0, count: 64)
        withOPT[2] |= 0x80
        let optLength = withOPT.withUnsafeMutableBytes { ResponseBuilder.truncate(in: $0, withOPT: true) }
        #expect(optLength == 30 + 11)
        withOPT.withUnsafeBytes { p in
            #expect(DNSHeader.additionalCount(p.baseAddress!) == 1)
            #expect(p[30] == 0 && p[31] == 0 && p[32] == 41)  // root owner, TYPE OPT
        }
        var junk = [UInt8](repeating: 0xff, count: 20)
        #expect(junk.withUnsafeMutableBytes { ResponseBuilder.truncate(in: $0) } == nil)
    }
}

@Suite struct QuestionTests {
    static func matches(_ query: [UInt8], _ response: [UInt8]) -> Bool {
        let end = query.withUnsafeBytes { Question.end(in: $0) }!
        return query.withUnsafeBytes { q in response.withUnsafeBytes { r in Question.matches(query: q, end: end, response: r) } }
    }

    @Test func caseDoesNotMatterButEverythingElseDoes() {
        let q = QueryBuilder.query(name: "www.lab.test", type: 1, id: 1)!
        let upper = QueryBuilder.query(name: "WwW.LaB.TeSt", type: 1, id: 1)!
        let other = QueryBuilder.query(name: "www.lab.tesu", type: 1, id: 1)!
        let aaaa = QueryBuilder.query(name: "www.lab.test", type: 28, id: 1)!
        #expect(Self.matches(q, upper))
        #expect(!Self.matches(q, other))
        #expect(!Self.matches(q, aaaa))
        #expect(!Self.matches(q, Array(q.prefix(20))))
        var twoQuestions = q
        twoQuestions[5] = 2
        #expect(!Self.matches(q, twoQuestions))
    }

    @Test func nameIsReadable() {
        let q = QueryBuilder.query(name: "WWW.Lab.test", type: 1, id: 1)!
        #expect(q.withUnsafeBytes { Question.name(in: $0) } == "www.lab.test")
    }

    @Test func idRestoreWritesBigEndian() {
        var bytes = [UInt8](repeating: 0, count: 12)
        bytes.withUnsafeMutableBytes { DNSHeader.setID($0.baseAddress!, 0xbeef) }
        #expect(bytes[0] == 0xbe && bytes[1] == 0xef)
    }
}
