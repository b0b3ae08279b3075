import DNS
import Foundation
import Glibc
import RelayCore
import Testing
@testable import QueryLog

/// The query log's line format (docs/QUERYLOG.md), written byte by byte: whole lines for each kind
/// of entry compared with the text they must be, and the pieces (addresses, numbers, JSON strings,
/// small copies) checked against slow, obvious references over many inputs, edge values first.
@Suite struct QueryLogFormatterTests {
    static let client = Endpoint(address: .v4(IPv4Address(10, 53, 1, 2)), port: 40000)
    static let server = Endpoint(address: .v4(IPv4Address(10, 53, 2, 53)), port: 53)
    /// 2026-11-26T21:13:32.000042Z
    static let time: UInt64 = 1_795_727_612_000_042

    static func line(_ record: QueryLogRecord, name: String = "", lists: [String] = [], anonymize: Bool = false, clientName: String? = nil) -> String {
        var formatter = QueryLogFormatter(lists: lists, anonymize: anonymize)
        defer { formatter.deallocate() }
        formatter.ruleTexts.refresh()
        let bytes = Array(name.utf8)
        let nameBytes = clientName.map { Array($0.utf8) } ?? []
        bytes.withUnsafeBytes { name in
            nameBytes.withUnsafeBytes { formatter.format(record, name: name, clientName: clientName == nil ? nil : $0) }
        }
        return String(decoding: formatter.out.bytes, as: UTF8.self)
    }

    static func record(_ action: QueryLogRecord.Action = .allowed, proto: QueryLogRecord.Proto = .udp, name: String = "www.example.com") -> QueryLogRecord {
        var r = QueryLogRecord()
        r.time = time
        r.durationMicros = 250
        r.proto = proto
        r.action = action
        r.client = client
        r.server = server
        r.qtype = 1
        r.nameLength = UInt8(name.utf8.count)
        return r
    }

    @Test func aForwardedAnswer() {
        var r = Self.record()
        r.upstream = Self.server
        r.answerCount = 2
        r.answers.0 = .v4(IPv4Address(93, 184, 0, 255))
        r.answers.1 = IPAddress("2001:db8::1")!
        #expect(Self.line(r, name: "www.example.com") == """
            {"time":"2026-11-26T21:13:32.000042Z","proto":"udp","client":"10.53.1.2:40000","server":"10.53.2.53:53",\
            "qname":"www.example.com","qtype":"A","action":"allowed","rule":null,"rcode":"NOERROR",\
            "answers":["93.184.0.255","2001:db8::1"],"upstream":"10.53.2.53:53","cached":false,"duration_us":250}

            """)
    }

    @Test func aNamedClient() {
        var r = Self.record()
        r.upstream = Self.server
        let line = Self.line(r, name: "www.example.com", clientName: "kids-ipad")
        #expect(line.hasPrefix("""
            {"time":"2026-11-26T21:13:32.000042Z","proto":"udp","client":"10.53.1.2:40000","client_name":"kids-ipad","server":"10.53.2.53:53",
            """))
        // Anonymized clients carry no name (a name would undo the anonymizing).
        #expect(!Self.line(r, name: "www.example.com", anonymize: true, clientName: "kids-ipad").contains("client_name"))
    }

    @Test func aCachedAnswerOverTCPFromIPv6() {
        var r = Self.record(.cached, proto: .tcp, name: "h.test")
        r.client = Endpoint(address: IPAddress("fd53:1::2")!, port: 5353)
        r.server = Endpoint(address: IPAddress("fd53:2::53")!, port: 53)
        r.qtype = 28
        r.durationMicros = 0
        r.rcode = 0
        #expect(Self.line(r, name: "h.test") == """
            {"time":"2026-11-26T21:13:32.000042Z","proto":"tcp","client":"[fd53:1::2]:5353","server":"[fd53:2::53]:53",\
            "qname":"h.test","qtype":"AAAA","action":"cached","rule":null,"rcode":"NOERROR","answers":[],"upstream":null,\
            "cached":true,"duration_us":0}

            """)
    }

    @Test func aBlockedQueryNamesItsRule() throws {
        let path = NSTemporaryDirectory() + "formatter-\(UUID().uuidString)-\"quoted\".txt"
        try "! header\n||ads.example^\n".write(toFile: path, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var r = Self.record(.blocked, name: "x.ads.example")
        r.rcode = 3
        r.ruleList = 0
        r.ruleLine = 2
        let escaped = path.replacingOccurrences(of: "\"", with: "\\\"")
        #expect(Self.line(r, name: "x.ads.example", lists: [path]) == """
            {"time":"2026-11-26T21:13:32.000042Z","proto":"udp","client":"10.53.1.2:40000","server":"10.53.2.53:53",\
            "qname":"x.ads.example","qtype":"A","action":"blocked","rule":{"list":"\(escaped)","line":2,"text":"||ads.example^"},\
            "rcode":"NXDOMAIN","answers":[],"upstream":null,"cached":false,"duration_us":250}

            """)
        // A rule index no list has (a reload shrank the lists) is written as no rule, not a crash.
        r.ruleList = 5
        #expect(Self.line(r, name: "x.ads.example", lists: [path]).contains("\"rule\":null"))
    }

    @Test func aQueryWithoutAQuestionAndOddTypesAndRcodes() {
        var r = Self.record(.error, name: "")
        r.qtype = 0
        r.rcode = 0x1f  // only the header's four bits count
        let line = Self.line(r)
        #expect(line.contains("\"qname\":null,\"qtype\":null,\"action\":\"error\",\"rule\":null,\"rcode\":\"\(ResponseCode(rawValue: 15).description)\""))
        r.nameLength = 1
        for (type, name) in [(UInt16(257), "CAA"), (65, "HTTPS"), (65280, "TYPE65280"), (255, "ANY")] {
            r.qtype = type
            #expect(Self.line(r, name: ".").contains("\"qtype\":\"\(name)\""), "type \(type)")
        }
    }

    @Test func aQUICFlow() {
        var r = Self.record(.allowed, proto: .quic, name: "quic.lab.test")
        r.quicVersion = 1
        r.bytesUp = 12_345
        r.bytesDown = 1_000_000_007
        r.qtype = 0
        #expect(Self.line(r, name: "quic.lab.test") == """
            {"time":"2026-11-26T21:13:32.000042Z","proto":"quic","client":"10.53.1.2:40000","server":"10.53.2.53:53",\
            "sni":"quic.lab.test","quic_version":"1","action":"allowed","rule":null,"bytes_up":12345,\
            "bytes_down":1000000007,"duration_us":250}

            """)
        // The flow's second entry, when it ends: the same fields and `"event":"end"`.
        r.flowEnd = true
        let end = Self.line(r, name: "quic.lab.test")
        #expect(end.hasSuffix("\"bytes_down\":1000000007,\"duration_us\":250,\"event\":\"end\"}\n"))
        let parsed = QueryLogEntry(line: String(end.dropLast()))
        #expect(parsed?.isFlowEnd == true && parsed?.bytesDown == 1_000_000_007 && parsed?.sni == "quic.lab.test")
        var stats = QueryLogStats()
        stats.add(QueryLogEntry(line: String(Self.line({ var d = r; d.flowEnd = false; return d }(), name: "quic.lab.test").dropLast()))!)
        stats.add(parsed!)
        #expect(stats.total == 1 && stats.flowsEnded == 1 && stats.quicBytes.down == 1_000_000_007, "a flow counts once")
        r.flowEnd = false
        r.nameLength = 0
        r.quicVersion = 0
        r.sniFailure = 1  // SNIFailure.Code 0 + 1
        let line = Self.line(r)
        #expect(line.contains("\"sni\":null,\"quic_version\":null,\"sni_error\":\""))
        #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil)
    }

    /// The host's own queries (`intercept.local`) say so; the LAN's lines do not change.
    @Test func localQueriesCarryTheirOrigin() throws {
        var r = Self.record()
        r.local = true
        let line = Self.line(r, name: "www.example.com")
        #expect(line.contains("\"server\":\"10.53.2.53:53\",\"origin\":\"local\",\"qname\":"))
        let entry = try #require(QueryLogEntry(line: String(line.dropLast())))
        #expect(entry.origin == "local")
        var stats = QueryLogStats()
        stats.add(entry)
        stats.add(try #require(QueryLogEntry(line: String(Self.line(Self.record(), name: "www.example.com").dropLast()))))
        #expect(stats.total == 2 && stats.local == 1)
        #expect(!Self.line(Self.record(), name: "www.example.com").contains("origin"))
    }

    @Test func anonymizedClientsLoseTheirHostPart() {
        var r = Self.record()
        r.client = Endpoint(address: .v4(IPv4Address(192, 168, 7, 201)), port: 40000)
        #expect(Self.line(r, name: "a.test", anonymize: true).contains("\"client\":\"192.168.7.0:0\""))
        r.client = Endpoint(address: IPAddress("2001:db8:1:2ff:aa::9")!, port: 40000)
        #expect(Self.line(r, name: "a.test", anonymize: true).contains("\"client\":\"[2001:db8:1:200::]:0\""))
    }

    @Test func namesFromTheWireAreEscapedAndEveryLineIsJSON() throws {
        // Every byte value once, in a name: the line must parse and give the bytes back.
        for start in stride(from: 0, to: 256, by: 32) {
            let bytes = (start..<(start + 32)).map { UInt8($0) }
            var r = Self.record()
            r.nameLength = UInt8(bytes.count)
            var formatter = QueryLogFormatter(lists: [], anonymize: false)
            defer { formatter.deallocate() }
            bytes.withUnsafeBytes { formatter.format(r, name: $0) }
            let object = try #require(try JSONSerialization.jsonObject(with: Data(formatter.out.bytes)) as? [String: Any])
            let qname = try #require(object["qname"] as? String)
            #expect(qname.unicodeScalars.map { UInt8($0.value) } == bytes, "bytes \(start)..<\(start + 32)")
        }
    }

    @Test func theSecondPartOfTheTimeIsKeptAndRenewed() {
        var formatter = QueryLogFormatter(lists: [], anonymize: false)
        defer { formatter.deallocate() }
        for micros in [Self.time, Self.time + 999_957, Self.time + 999_958, 0, 253_402_300_799_999_999] {
            formatter.appendTime(micros)
            formatter.out.append(UInt8(ascii: " "))
        }
        #expect(String(decoding: formatter.out.bytes, as: UTF8.self) ==
                "2026-11-26T21:13:32.000042Z 2026-11-26T21:13:32.999999Z 2026-11-26T21:13:33.000000Z " +
                "1970-01-01T00:00:00.000000Z 9999-12-31T23:59:59.999999Z ")
    }

    // MARK: Pieces

    /// Addresses against inet_ntop, glibc's RFC 5952 text: edge cases, then random addresses whose
    /// groups are zero half the time (so that runs of zeros of every length and place occur).
    @Test func addressesMatchInetNtop() {
        func reference(_ bytes: [UInt8]) -> String {
            var text = [CChar](repeating: 0, count: 64)
            _ = bytes.withUnsafeBytes { inet_ntop(bytes.count == 4 ? AF_INET : AF_INET6, $0.baseAddress, &text, 64) }
            return String(cString: text)
        }
        func written(_ address: IPAddress) -> String {
            let text = AddressText()
            defer { text.deallocate() }
            var out = LineBuffer(capacity: 8)
            defer { out.deallocate() }
            text.append(address, to: &out)
            return String(decoding: out.bytes, as: UTF8.self)
        }
        var cases: [[UInt8]] = [[0, 0, 0, 0], [255, 255, 255, 255], [1, 10, 100, 200], [9, 99, 0, 109]]
        cases += ["::", "::1", "::ffff:10.0.0.1", "::10.0.0.1", "1::", "1::1", "1:0:0:1::1", "1::1:0:0:1", "0:1::",
                  "1:0:1:0:1:0:1:0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0:0:0:0:1::", "0:0:0:0:0:1::", "fe80::1:2"]
            .map { text in var raw = in6_addr(); inet_pton(AF_INET6, text, &raw); return withUnsafeBytes(of: raw) { Array($0) } }
        var random = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            cases.append((0..<4).map { _ in UInt8.random(in: 0...255, using: &random) })
            var v6: [UInt8] = []
            for _ in 0..<8 {
                let group: UInt16 = Bool.random(using: &random) ? 0 : [1, 0xf, 0x10, 0xff, 0x100, 0xfff, 0x1000, .max, .random(in: 1...UInt16.max)].randomElement(using: &random)!
                v6 += [UInt8(group >> 8), UInt8(group & 0xff)]
            }
            cases.append(v6)
        }
        var failures = 0
        for bytes in cases {
            let address: IPAddress = bytes.count == 4 ? .v4(IPv4Address(bytes[0], bytes[1], bytes[2], bytes[3])) : .v6(IPv6Address(bytes: bytes))
            if written(address) != reference(bytes) {
                failures += 1
                if failures < 5 { Issue.record("\(bytes): \(written(address)) ≠ \(reference(bytes))") }
            }
        }
        #expect(failures == 0)
    }

    @Test func endpointsBracketIPv6() {
        let text = AddressText()
        defer { text.deallocate() }
        var out = LineBuffer(capacity: 8)
        defer { out.deallocate() }
        text.append(Endpoint(address: IPAddress("fd53::53")!, port: 65535), to: &out)
        out.append(UInt8(ascii: " "))
        text.append(Endpoint(address: .v4(IPv4Address(10, 0, 0, 1)), port: 0), to: &out)
        #expect(String(decoding: out.bytes, as: UTF8.self) == "[fd53::53]:65535 10.0.0.1:0")
    }

    @Test func decimals() {
        var out = LineBuffer(capacity: 8)
        defer { out.deallocate() }
        var values: [UInt64] = [0, 9, 10, 99, 100, 999_999, 1_000_000, 9_999_999, 10_000_000, UInt64(UInt32.max), .max]
        values += (0..<64).map { UInt64(1) << $0 }
        values += (0..<1000).map { _ in UInt64.random(in: 0...UInt64.max) >> UInt64.random(in: 0...63) }
        for value in values {
            out.removeAll()
            out.appendDecimal(value)
            #expect(String(decoding: out.bytes, as: UTF8.self) == String(value))
        }
    }

    /// The word-at-a-time test against the byte-by-byte rule, for every length up to 40 and bytes
    /// drawn mostly from the edges of the ranges it tells apart.
    @Test func escapingIsDetectedWordByWord() {
        let edges: [UInt8] = [0x00, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7e, 0x7f, 0x80, 0xa2, 0xdc, 0xff]
        func needs(_ bytes: [UInt8]) -> Bool { bytes.contains { $0 < 0x20 || $0 >= 0x7f || $0 == 0x22 || $0 == 0x5c } }
        for length in 0...40 {
            for _ in 0..<400 {
                var bytes = (0..<length).map { _ in UInt8.random(in: 0x61...0x7a) }  // letters
                if length > 0 && Bool.random() { bytes[Int.random(in: 0..<length)] = edges.randomElement()! }
                let fast = bytes.withUnsafeBytes { LineBuffer.needsEscaping($0) }
                #expect(fast == needs(bytes), "\(bytes)")
            }
        }
    }

    /// The small-copy paths (two or four overlapping words) for every length up to 100, at odd
    /// offsets, next to bytes that must stay as they were.
    @Test func copiesOfEveryLength() {
        let source = UnsafeMutableRawBufferPointer.allocate(byteCount: 128, alignment: 8)
        let target = UnsafeMutableRawBufferPointer.allocate(byteCount: 128, alignment: 8)
        defer { source.deallocate(); target.deallocate() }
        for i in 0..<128 { source[i] = UInt8(i) }
        for length in 0...100 {
            for offset in [0, 1, 3, 7] {
                for i in 0..<128 { target[i] = 0xee }
                LineBuffer.copy(source.baseAddress! + offset, to: target.baseAddress! + 5, count: length)
                for i in 0..<128 {
                    let expected: UInt8 = i >= 5 && i < 5 + length ? UInt8(i - 5 + offset) : 0xee
                    if target[i] != expected { Issue.record("length \(length) offset \(offset) byte \(i)"); break }
                }
            }
        }
    }

    @Test func theBufferGrowsAndKeepsItsBytes() {
        var out = LineBuffer(capacity: 1)
        defer { out.deallocate() }
        var expected: [UInt8] = []
        for i in 0..<5000 {
            let piece = Array("piece \(i);".utf8)
            piece.withUnsafeBytes { out.append($0) }
            expected += piece
        }
        out.appendJSONString(wire: UnsafeRawBufferPointer(start: nil, count: 0))
        expected += Array("\"\"".utf8)
        #expect(Array(out.bytes) == expected)
    }
}
