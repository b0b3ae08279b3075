import Testing
@testable import DNS
import RelayCore

/// Issue 17: the ECS option (RFC 7871) put into queries and taken out of answers, in place.
@Suite struct ClientSubnetTests {
    /// A query for www.lab.test A; with an OPT record carrying `options` when given.
    static func query(options: [UInt8]? = nil, extra: [UInt8] = []) -> [UInt8] {
        var q = QueryBuilder.query(name: "www.lab.test", type: 1, id: 0x1234)!
        if let options {
            q[11] = 1
            q += [0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, UInt8(options.count >> 8), UInt8(options.count & 0xff)] + options
        }
        if !extra.isEmpty {
            q[11] += 1
            q += extra
        }
        return q
    }

    static let v4 = IPPrefix(address: IPAddress("10.53.1.77")!, length: 24)
    static let cookie: [UInt8] = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]

    static func apply(_ subnet: IPPrefix, _ message: [UInt8], keep: Bool = false, room: Int = 4096) -> ([UInt8], ClientSubnet.Applied) {
        var buffer = message + [UInt8](repeating: 0, count: max(0, room - message.count))
        let end = message.withUnsafeBytes { Question.end(in: $0)! }
        let applied = buffer.withUnsafeMutableBytes {
            ClientSubnet.apply(subnet, to: UnsafeMutableRawBufferPointer(rebasing: $0[0..<room]), length: message.count, questionEnd: end, keepExisting: keep)
        }
        if case .set(let length, _) = applied { return (Array(buffer[0..<length]), applied) }
        return (Array(buffer[0..<message.count]), applied)
    }

    static func ecs(in message: [UInt8]) -> [UInt8]? {
        let end = message.withUnsafeBytes { Question.end(in: $0)! }
        return message.withUnsafeBytes { bytes -> [UInt8]? in
            guard let opt = ClientSubnet.OPTRecord.find(bytes, questionEnd: end), let data = opt.data,
                  let ecs = ClientSubnet.OptionList(bytes, data: data)?.ecs else { return nil }
            return Array(bytes[ecs])
        }
    }

    static func parses(_ message: [UInt8]) -> Bool {
        guard case .query = message.withUnsafeBytes({ QueryParser.classify($0) }) else { return false }
        return true
    }

    @Test func aQueryWithoutOPTGetsOneWithTheSubnet() throws {
        let (out, applied) = Self.apply(Self.v4, Self.query())
        #expect(applied == .set(length: out.count, addedOPT: true))
        #expect(Self.ecs(in: out) == [0, 8, 0, 7, 0, 1, 24, 0, 10, 53, 1], "family 1, /24, scope 0, three address bytes")
        #expect(Self.parses(out))
        #expect(out[11] == 1, "ARCOUNT counts the OPT record")
    }

    @Test func otherOptionsStayAndAClientsOwnSubnetIsReplaced() throws {
        let own: [UInt8] = [0, 8, 0, 8, 0, 1, 32, 0, 192, 0, 2, 1]
        let (out, applied) = Self.apply(Self.v4, Self.query(options: Self.cookie + own))
        guard case .set(_, let added) = applied else { Issue.record("\(applied)"); return }
        #expect(!added)
        #expect(Self.ecs(in: out) == [0, 8, 0, 7, 0, 1, 24, 0, 10, 53, 1])
        #expect(out.count == Self.query(options: Self.cookie).count + 11)
        #expect(Array(out[(out.count - 23)..<(out.count - 11)]) == Self.cookie, "the cookie is kept, before the new option")
        #expect(Self.parses(out))
    }

    @Test func keepingLeavesTheClientsOwn() {
        let own: [UInt8] = [0, 8, 0, 8, 0, 1, 32, 0, 192, 0, 2, 1]
        let message = Self.query(options: own)
        let (out, applied) = Self.apply(Self.v4, message, keep: true)
        #expect(applied == .keptClients && out == message)
    }

    @Test func ipv6PrefixesAreCut() {
        let subnet = IPPrefix(address: IPAddress("fd53:1:2:3ff::9")!, length: 56)
        let (out, _) = Self.apply(subnet, Self.query(options: []))
        // fd53:0001:0002:03 — seven bytes, the host bits of the last one cleared.
        #expect(Self.ecs(in: out) == [0, 8, 0, 11, 0, 2, 56, 0, 0xfd, 0x53, 0, 1, 0, 2, 0x03])
        let zero = Self.apply(IPPrefix(address: IPAddress("10.53.1.2")!, length: 0), Self.query()).0
        #expect(Self.ecs(in: zero) == [0, 8, 0, 4, 0, 1, 0, 0], "a /0 carries no address bytes")
    }

    /// Moving records that follow the OPT record could break their compression pointers.
    @Test func recordsAfterTheOPTRecordLeaveItAlone() {
        let record: [UInt8] = [0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 53, 9, 9]
        let message = Self.query(options: Self.cookie + [0, 8, 0, 4, 0, 1, 0, 0], extra: record)
        #expect(Self.apply(Self.v4, message).1 == .unchanged)
        var copy = message
        let count = copy.count
        let end = message.withUnsafeBytes { Question.end(in: $0)! }
        #expect(copy.withUnsafeMutableBytes { ClientSubnet.strip($0, length: count, questionEnd: end) } == count)
        #expect(copy.withUnsafeMutableBytes { ClientSubnet.removeOPT($0, length: count, questionEnd: end) } == count)
    }

    @Test(arguments: [
        ("an option running past the OPT data", [0, 8, 0, 40, 0, 1] as [UInt8]),
        ("an option header cut short", [0, 8, 0] as [UInt8]),
        ("two ECS options", [0, 8, 0, 4, 0, 1, 0, 0, 0, 8, 0, 4, 0, 1, 0, 0] as [UInt8]),
    ])
    func malformedOptionListsAreLeftAlone(why: String, options: [UInt8]) {
        let message = Self.query(options: options)
        let (out, applied) = Self.apply(Self.v4, message)
        #expect(applied == .unchanged, "\(why)")
        #expect(out == message)
    }

    @Test func signedMessagesAndFullBuffersAreLeftAlone() {
        // A TSIG-shaped record (type 250) last: signing covers every byte before it.
        let tsig: [UInt8] = [0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0]
        #expect(Self.apply(Self.v4, Self.query(extra: tsig)).1 == .unchanged)
        let message = Self.query()
        #expect(Self.apply(Self.v4, message, room: message.count + 10).1 == .unchanged, "no room for OPT and option")
    }

    /// An answer as an upstream sends it: one A record, then OPT with a cookie and ECS scope `scope`.
    static func answer(scope: UInt8?) -> [UInt8] {
        var a = QueryBuilder.query(name: "www.lab.test", type: 1, id: 0x1234)!
        a[2] = 0x81; a[3] = 0x80
        a[7] = 1
        a += [0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 53, 5, 2]
        var options = Self.cookie
        if let scope { options += [0, 8, 0, 7, 0, 1, 24, scope, 10, 53, 1] }
        a[11] = 1
        a += [0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, UInt8(options.count)] + options
        return a
    }

    @Test func answersTellTheirScopeAndLoseTheOption() {
        var answer = Self.answer(scope: 32)
        let end = answer.withUnsafeBytes { Question.end(in: $0)! }
        #expect(answer.withUnsafeBytes { ClientSubnet.scope(in: $0, questionEnd: end) } == 32)
        #expect(Self.answer(scope: nil).withUnsafeBytes { ClientSubnet.scope(in: $0, questionEnd: end) } == nil)
        let count = answer.count
        let length = answer.withUnsafeMutableBytes { ClientSubnet.strip($0, length: count, questionEnd: end) }
        #expect(Array(answer[0..<length]) == Self.answer(scope: nil), "only the ECS option goes")
        var again = Self.answer(scope: 0)
        let total = again.count
        let withoutOPT = again.withUnsafeMutableBytes { ClientSubnet.removeOPT($0, length: total, questionEnd: end) }
        #expect(withoutOPT == Self.answer(scope: nil).count - 11 - Self.cookie.count)
        #expect(again[11] == 0, "ARCOUNT no longer counts it")
    }

    @Test func theQueryParserFindsAClientsOwnOption() {
        let own = Self.query(options: [0, 8, 0, 4, 0, 1, 0, 0])
        let end = own.withUnsafeBytes { Question.end(in: $0)! }
        #expect(own.withUnsafeBytes { ClientSubnet.carried(in: $0, questionEnd: end) })
        #expect(!Self.query(options: Self.cookie).withUnsafeBytes { ClientSubnet.carried(in: $0, questionEnd: end) })
    }
}

/// Found by the answer fuzz target (issue 17): a name pointer into a TTL field reads the clamped
/// TTL as labels, so a first check that clamps must leave bytes that a second check accepts.
@Suite struct AnswerCheckAgainTests {
    static let pointerIntoTTL: [UInt8] = [
        0x42, 0x42, 0x81, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x03, 0x57, 0x77, 0x77,
        0x03, 0x6c, 0x5b, 0x62, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x01, 0x00, 0x01, 0xc0, 0x10,
        0x00, 0x06, 0x00, 0x01, 0x00, 0x02, 0xf7, 0x2c, 0x00, 0x21, 0x02, 0x6e, 0x73, 0xc0, 0x25, 0x05,
        0x61, 0x64, 0x6d, 0x69, 0x6e, 0xc0, 0x28, 0x00, 0x00, 0x04, 0xf9, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe,
        0xfe, 0x01, 0x01, 0x3d, 0x01, 0x01, 0x01, 0x01, 0x03, 0x00, 0xcc,
    ]

    @Test func aSoundAnswerStaysSoundWhenCheckedAgain() {
        var message = Self.pointerIntoTTL
        let end = message.withUnsafeBytes { Question.end(in: $0)! }
        let first = message.withUnsafeMutableBytes { AnswerCheck.check($0, questionEnd: end, maxTTL: 86_400) }
        let second = message.withUnsafeMutableBytes { AnswerCheck.check($0, questionEnd: end, maxTTL: 86_400) }
        #expect(message != Self.pointerIntoTTL, "the TTL 194,348 was clamped")
        #expect(!first || second, "a first check that passes must be one a second check agrees with")
    }
}
