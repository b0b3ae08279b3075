import RelayCore
import Testing
@testable import DNS

/// PTR names of clients: the query name of an address, and answers read with hard bounds.
@Suite struct ReverseNameTests {
    @Test func queryNames() {
        #expect(ReverseName.queryName(for: IPAddress("10.53.1.2")!) == "2.1.53.10.in-addr.arpa")
        #expect(ReverseName.queryName(for: IPAddress("fd53:1::2")!) == "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.3.5.d.f.ip6.arpa")
    }

    /// A response built by hand: header, question, then `records`.
    static func response(id: UInt16 = 7, rcode: UInt16 = 0, answers: [[UInt8]] = [], authority: [[UInt8]] = []) -> [UInt8] {
        var m: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xff), 0x81, UInt8(0x80 | rcode), 0, 1, 0, UInt8(answers.count), 0, UInt8(authority.count), 0, 0]
        m += AliasAnswer.wireName("2.1.53.10.in-addr.arpa") + [0, 12, 0, 1]
        for r in answers + authority { m += r }
        return m
    }

    static func ptr(_ target: [UInt8], ttl: UInt32 = 300) -> [UInt8] {
        [0xc0, 12, 0, 12, 0, 1] + withUnsafeBytes(of: ttl.bigEndian, Array.init) + [UInt8(target.count >> 8), UInt8(target.count & 0xff)] + target
    }

    static func read(_ m: [UInt8], id: UInt16 = 7) -> ReverseName.Answer { m.withUnsafeBytes { ReverseName.answer($0, id: id) } }

    @Test func aNameWithItsTTL() {
        #expect(Self.read(Self.response(answers: [Self.ptr(AliasAnswer.wireName("Lab-Client.lab.test"), ttl: 120)])) == .name("lab-client.lab.test", ttl: 120))
        // Compressed against the question's "in-addr.arpa" ... any backward pointer is followed.
        let compressed: [UInt8] = [3, 0x61, 0x62, 0x63, 0xc0, 12]
        #expect(Self.read(Self.response(answers: [Self.ptr(compressed)])) == .name("abc.2.1.53.10.in-addr.arpa", ttl: 300))
    }

    @Test func noNameIsNoneWithTheSOAMinimum() {
        let soa: [UInt8] = [0xc0, 12, 0, 6, 0, 1, 0, 0, 0x0e, 0x10, 0, 22] + [0, 0] + Array(repeating: 0, count: 16) + [0, 0, 0, 60]
        #expect(Self.read(Self.response(rcode: 3, authority: [soa])) == .none(ttl: 60))
        #expect(Self.read(Self.response()) == .none(ttl: 300))
    }

    @Test func failuresAndHostileAnswers() {
        #expect(Self.read(Self.response(rcode: 2)) == .failure)  // SERVFAIL
        #expect(Self.read(Self.response(), id: 8) == .failure)  // another query's answer
        #expect(Self.read(Array(Self.response().prefix(11))) == .failure)
        // A pointer forwards, a label past the end, a name with a quote: never a name.
        #expect(Self.read(Self.response(answers: [Self.ptr([0xc0, 200])])) == .failure)
        #expect(Self.read(Self.response(answers: [Self.ptr([9, 0x61])])) == .failure)
        #expect(Self.read(Self.response(answers: [Self.ptr([3, 0x61, 0x22, 0x62, 0])])) == .none(ttl: 300))
        var truncated = Self.response(answers: [Self.ptr(AliasAnswer.wireName("a.test"))])
        truncated[2] |= 0x02
        #expect(Self.read(truncated) == .failure)
    }
}
