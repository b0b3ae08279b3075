import Foundation
import Testing
@testable import DNS
@testable import Zones

/// Zone files and authoritative answers, table-driven: a question, the expected response code,
/// the answer records (owner and type) and whether the SOA is in the authority section.
@Suite struct ZoneTests {
    static let zoneText = """
        $TTL 300
        @        IN SOA ns.home.lan. admin.home.lan. ( 1 3600 600 86400 60 )
                 IN NS  ns
        ns       IN A   10.53.5.1
        nas      IN A   10.53.5.10
        nas      IN AAAA fd53:5::10
        www      IN CNAME web
        web      IN CNAME nas
        ext      IN CNAME www.lab.test.
        *.dev    IN A   10.53.5.99
        a.b.deep IN TXT "leaf"
        mail     IN MX  10 nas
        $INCLUDE printers.inc
        after    IN A   10.53.5.77
        """

    static func directory(_ files: [String: String]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("zones-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
        return dir
    }

    static func home() throws -> LocalZones {
        let dir = try directory(["home.lan.zone": zoneText, "printers.inc": "printer IN A 10.53.5.20\n"])
        let outcome = ZoneLoader.load(directory: dir)
        #expect(outcome.errors.isEmpty, "\(outcome.errors)")
        return outcome.zones
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var type: UInt16
        var rcode: ResponseCode
        /// "owner TYPE" of each answer record; owner "" is the name asked.
        var answer: [String]
        var soa = false
        var testDescription: String { "\(name) \(type)" }
    }

    static let cases: [Case] = [
        Case(name: "nas.home.lan", type: 1, rcode: .noError, answer: [" 1"]),
        Case(name: "nas.home.lan", type: 28, rcode: .noError, answer: [" 28"]),
        Case(name: "nas.home.lan", type: 16, rcode: .noError, answer: [], soa: true),  // NODATA
        Case(name: "www.home.lan", type: 1, rcode: .noError, answer: [" 5", "web.home.lan 5", "nas.home.lan 1"]),  // chain
        Case(name: "www.home.lan", type: 5, rcode: .noError, answer: [" 5"]),
        Case(name: "ext.home.lan", type: 1, rcode: .noError, answer: [" 5"]),  // target outside: the resolver follows
        Case(name: "x.dev.home.lan", type: 1, rcode: .noError, answer: [" 1"]),  // wildcard
        Case(name: "y.x.dev.home.lan", type: 1, rcode: .noError, answer: [" 1"]),
        Case(name: "x.dev.home.lan", type: 28, rcode: .noError, answer: [], soa: true),
        Case(name: "dev.home.lan", type: 1, rcode: .noError, answer: [], soa: true),  // empty non-terminal
        Case(name: "b.deep.home.lan", type: 1, rcode: .noError, answer: [], soa: true),
        Case(name: "missing.home.lan", type: 1, rcode: .nameError, answer: [], soa: true),
        Case(name: "x.missing.home.lan", type: 1, rcode: .nameError, answer: [], soa: true),
        Case(name: "home.lan", type: 6, rcode: .noError, answer: [" 6"]),
        Case(name: "home.lan", type: 2, rcode: .noError, answer: [" 2"]),
        Case(name: "mail.home.lan", type: 15, rcode: .noError, answer: [" 15"]),
        Case(name: "printer.home.lan", type: 1, rcode: .noError, answer: [" 1"]),  // $INCLUDE
        Case(name: "after.home.lan", type: 1, rcode: .noError, answer: [" 1"]),  // origin restored
    ]

    @Test(arguments: cases)
    func answers(_ c: Case) throws {
        let zones = try Self.home()
        var bytes = Array(c.name.utf8)
        let index = try #require(bytes.withUnsafeMutableBytes { zones.zoneIndex(for: UnsafeRawBufferPointer($0)) })
        let answer = zones.answer(zone: index, name: c.name, type: c.type)
        #expect(answer.rcode == c.rcode)
        #expect(answer.answer.map { "\($0.owner ?? "") \($0.record.type)" } == c.answer)
        #expect(answer.authority.contains { $0.record.type == 6 } == c.soa)
    }

    @Test func namesOutsideEveryZoneAreNotLocal() throws {
        let zones = try Self.home()
        for name in ["lab.test", "xhome.lan", "lan"] {
            var bytes = Array(name.utf8)
            #expect(bytes.withUnsafeMutableBytes { zones.zoneIndex(for: UnsafeRawBufferPointer($0)) } == nil, "\(name)")
        }
    }

    @Test func theAnswerOnTheWireIsAuthoritativeWithTheNegativeTTL() throws {
        let zones = try Self.home()
        let query = QueryBuilder.query(name: "missing.home.lan", type: 1, id: 7)!
        var buffer = [UInt8](repeating: 0, count: 1232)
        buffer.replaceSubrange(0..<query.count, with: query)
        let end = try #require(query.withUnsafeBytes { Question.end(in: $0) })
        let length = buffer.withUnsafeMutableBytes {
            zones.answer(zone: 0, name: "missing.home.lan", type: 1).write(into: $0, questionEnd: end, withOPT: false, limit: 512)
        }
        #expect(buffer[2] & 0x84 == 0x84, "QR and AA")
        #expect(buffer[3] & 0x0f == 3, "NXDOMAIN")
        #expect(Array(buffer[4..<12]) == [0, 1, 0, 0, 0, 1, 0, 0])
        // The SOA's TTL is min(300, minimum 60) = 60 (RFC 2308 §3).
        let soaStart = end + 10  // owner "home.lan" is 10 bytes
        #expect(Array(buffer[(soaStart + 4)..<(soaStart + 8)]) == [0, 0, 0, 60])
        #expect(length > end + 20)
    }

    struct Broken: Sendable, CustomTestStringConvertible {
        var text: String
        var line: Int?
        var reason: String
        var testDescription: String { reason }
    }

    static let broken: [Broken] = [
        Broken(text: "$TTL 60\n@ IN SOA ns admin 1 2 3 4 5\nnas IN A 10.53.5.300\n", line: 3, reason: "Syntax error"),
        Broken(text: "$TTL 60\n@ IN SOA ns admin 1 2 3 4 5\nnas IN FROB x\n", line: 3, reason: "Syntax error"),
        Broken(text: "$TTL 60\nnas IN A 10.53.5.1\n", line: nil, reason: "no SOA"),
        Broken(text: "$TTL 60\n@ IN SOA ns admin 1 2 3 4 5\nx IN CNAME y\nx IN A 10.53.5.1\n", line: 3, reason: "a CNAME and other records"),
        Broken(text: "$TTL 60\n@ IN SOA ns admin 1 2 3 4 5\nother.test. IN A 10.53.5.1\n", line: 3, reason: "outside the zone"),
        Broken(text: "$TTL 60\n@ IN SOA ns admin 1 2 3 4 5\n$INCLUDE missing.inc\n", line: nil, reason: "does not exist"),
        // Found by the zone fuzz target: ldns reads type numbers past 16 bits.
        Broken(text: "$TTL 60\n@ IN SOA ns admin 1 2 3 4 5\nx IN TYPE70000 \\# 0\n", line: 3, reason: "out of range"),
    ]

    @Test(arguments: broken)
    func brokenZonesNameFileAndLine(_ c: Broken) throws {
        let dir = try Self.directory(["bad.lan.zone": c.text])
        let outcome = ZoneLoader.load(directory: dir)
        let error = try #require(outcome.errors.first)
        #expect(outcome.zones.isEmpty)
        if let line = c.line { #expect(error.line == line, "\(error)") }
        #expect(error.description.contains(c.reason), "\(error)")
        #expect(error.file.hasPrefix(dir))
    }

    /// Issue 13, finding 4: a FIFO as a zone file or an $INCLUDE is refused, not waited on.
    @Test func aFIFOInTheZonesIsRefused() throws {
        let dir = try Self.directory(["inc.lan.zone": "$TTL 60\n@ IN SOA ns admin 1 2 3 4 5\n$INCLUDE pipe.inc\n"])
        #expect(mkfifo(dir + "/pipe.inc", 0o600) == 0)
        #expect(mkfifo(dir + "/fifo.lan.zone", 0o600) == 0)
        let outcome = ZoneLoader.load(directory: dir)
        let reasons = outcome.errors.map(\.description)
        #expect(reasons.count == 2, "\(reasons)")
        #expect(reasons.allSatisfy { $0.contains("is a FIFO, not a regular file") }, "\(reasons)")
    }

    @Test func aBrokenReloadKeepsThePreviousVersion() throws {
        let dir = try Self.directory(["home.lan.zone": Self.zoneText, "printers.inc": "printer IN A 10.53.5.20\n"])
        let first = ZoneLoader.load(directory: dir)
        try "$TTL 60\n@ IN SOA ns admin 1 2 3 4 5\nnas IN A 999.1.1.1\n".write(toFile: dir + "/home.lan.zone", atomically: true, encoding: .utf8)
        let second = ZoneLoader.load(directory: dir, previous: first.zones)
        #expect(second.errors.count == 1)
        #expect(second.zones.zones.first?.recordCount == first.zones.zones.first?.recordCount)
    }
}
