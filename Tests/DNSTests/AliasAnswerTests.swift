import Testing
@testable import DNS

/// `$dnsrewrite` aliases: the query for the target, and the client's answer composed from the
/// upstream's (compressed) answer for it.
@Suite struct AliasAnswerTests {
    static let client = QueryBuilder.query(name: "Alias.Test", type: 1, id: 0x1111, ednsPayloadSize: 1232)!

    /// The upstream's answer for www.lab.test A: a compression pointer for the owner name.
    static let upstream: [UInt8] = [0x22, 0x22, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0,
                                    3, 0x77, 0x77, 0x77, 3, 0x6c, 0x61, 0x62, 4, 0x74, 0x65, 0x73, 0x74, 0, 0, 1, 0, 1,
                                    0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4, 10, 53, 2, 80]

    @Test func theQueryForTheTargetKeepsTypeHeaderAndEDNS() throws {
        var buffer = [UInt8](repeating: 0, count: 512)
        let built = try #require(Self.client.withUnsafeBytes { header in
            buffer.withUnsafeMutableBytes { AliasAnswer.query(target: "www.lab.test", type: 28, header: header, withOPT: true, into: $0) }
        })
        #expect(built.questionEnd == 12 + 14 + 4)
        #expect(built.length == built.questionEnd + 11)
        #expect(Array(buffer[0..<4]) == Array(Self.client[0..<4]))
        #expect(Array(buffer[12..<26]) == [3, 0x77, 0x77, 0x77, 3, 0x6c, 0x61, 0x62, 4, 0x74, 0x65, 0x73, 0x74, 0])
        #expect(Array(buffer[26..<30]) == [0, 28, 0, 1])
        guard case .query(let parsed) = buffer.withUnsafeBytes({ QueryParser.classify(UnsafeRawBufferPointer(rebasing: $0[0..<built.length])) }) else {
            Issue.record("the target query does not parse")
            return
        }
        #expect(parsed.hasEDNS)
    }

    @Test func theAnswerIsTheClientsQuestionTheCNAMEAndTheTargetsRecords() throws {
        let end = try #require(Self.client.withUnsafeBytes { Question.end(in: $0) })
        let composed = try #require(Self.client.withUnsafeBytes { original in
            Self.upstream.withUnsafeBytes {
                AliasAnswer.compose(original: UnsafeRawBufferPointer(rebasing: original[0..<end]), target: "www.lab.test", ttl: 42, upstream: $0, withOPT: true)
            }
        })
        #expect(Array(composed[12..<end]) == Array(Self.client[12..<end]), "the client's own question, case kept")
        #expect(composed[2] & 0x80 != 0, "QR")
        #expect(composed[3] & 0x0f == 0, "NOERROR")
        #expect(Array(composed[4..<12]) == [0, 1, 0, 2, 0, 0, 0, 1])
        let cname = Array(composed[end..<(end + 12)])
        #expect(cname == [0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0, 42, 0, 14])
        // The A record's owner is written out whole (no pointer into the upstream's message).
        let a = Array(composed[(end + 12 + 14)...])
        #expect(Array(a[0..<14]) == [3, 0x77, 0x77, 0x77, 3, 0x6c, 0x61, 0x62, 4, 0x74, 0x65, 0x73, 0x74, 0])
        #expect(Array(a[(14 + 10)..<(14 + 14)]) == [10, 53, 2, 80])
        #expect(composed.count == end + 12 + 14 + 14 + 14 + 11)
    }

    /// Found by the `answer` fuzz target: TSIG records out of place leaked inside ldns; the
    /// answer is now composed without ldns, and records of any type are copied as data.
    @Test func theFuzzedLeakInputComposesWithoutLdns() throws {
        let end = try #require(Self.client.withUnsafeBytes { Question.end(in: $0) })
        var upstream = Self.upstream
        upstream[11] = 2  // two TSIG records in the additional section
        upstream += [0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0] + [0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0]
        let composed = try #require(Self.client.withUnsafeBytes { original in
            upstream.withUnsafeBytes {
                AliasAnswer.compose(original: UnsafeRawBufferPointer(rebasing: original[0..<end]), target: "www.lab.test", ttl: 42, upstream: $0, withOPT: false)
            }
        })
        #expect(Array(composed[4..<12]) == [0, 1, 0, 2, 0, 0, 0, 0], "additional records are not copied")
    }

    /// Names inside record data are written out whole: an MX and an SOA whose names point into
    /// the upstream's message.
    @Test func namesInRecordDataAreExpanded() throws {
        let end = try #require(Self.client.withUnsafeBytes { Question.end(in: $0) })
        var upstream = Array(Self.upstream.prefix(30))
        upstream[7] = 1  // one answer: an MX
        upstream[9] = 1  // one authority record: an SOA
        upstream += [0xc0, 0x0c, 0, 15, 0, 1, 0, 0, 0, 60, 0, 4, 0, 10, 0xc0, 0x10]  // MX 10 lab.test
        upstream += [0xc0, 0x10, 0, 6, 0, 1, 0, 0, 0, 60, 0, 24, 0xc0, 0x0c, 0xc0, 0x10] + [UInt8](repeating: 1, count: 20)
        let composed = try #require(Self.client.withUnsafeBytes { original in
            upstream.withUnsafeBytes {
                AliasAnswer.compose(original: UnsafeRawBufferPointer(rebasing: original[0..<end]), target: "www.lab.test", ttl: 42, upstream: $0, withOPT: false)
            }
        })
        let labTest: [UInt8] = [3, 0x6c, 0x61, 0x62, 4, 0x74, 0x65, 0x73, 0x74, 0]
        let www: [UInt8] = [3, 0x77, 0x77, 0x77] + labTest
        let mx = www + [0, 15, 0, 1, 0, 0, 0, 60, 0, UInt8(2 + labTest.count), 0, 10] + labTest
        let soa = labTest + [0, 6, 0, 1, 0, 0, 0, 60, 0, UInt8(www.count + labTest.count + 20)] + www + labTest + [UInt8](repeating: 1, count: 20)
        #expect(Array(composed[(end + 12 + 14)...]) == mx + soa)
        // And it parses as a whole message.
        #expect(composed.withUnsafeBytes { RecordWalker.walk($0, questionEnd: end) { _ in } })
    }

    @Test func garbageFromUpstreamComposesNothing() {
        let garbage: [UInt8] = [0x22, 0x22, 0x81, 0x80, 0, 1, 0, 5, 0, 0, 0, 0, 63, 1, 2]
        let composed = Self.client.withUnsafeBytes { original in
            garbage.withUnsafeBytes { AliasAnswer.compose(original: UnsafeRawBufferPointer(rebasing: original[0..<28]), target: "x.test", ttl: 1, upstream: $0, withOPT: false) }
        }
        #expect(composed == nil)
    }
}
