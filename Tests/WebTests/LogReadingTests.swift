import Foundation
import Testing
@testable import Web

/// Reading the query log's bytes without a JSON parser: fields, times, filters, the overview's
/// counts, and the live feed's bounded reading.
@Suite struct LogReadingTests {
    static func line(time: String = "2026-12-02T04:16:47.479240Z", proto: String = "udp", client: String = "10.53.1.2:5353",
                     server: String = "10.53.2.53:53", qname: String = "ads.example.test", qtype: String = "A",
                     action: String = "blocked") -> String {
        "{\"time\":\"\(time)\",\"proto\":\"\(proto)\",\"client\":\"\(client)\",\"server\":\"\(server)\",\"qname\":\"\(qname)\",\"qtype\":\"\(qtype)\",\"action\":\"\(action)\",\"rcode\":\"NXDOMAIN\",\"answers\":[],\"upstream\":null,\"cached\":false,\"duration_us\":60}"
    }

    static func bytes(_ text: String) -> ArraySlice<UInt8> { Array(text.utf8)[...] }

    @Test func fieldsAreReadUpToTheUnescapedQuote() {
        let text = Self.bytes(#"{"qname":"we\"ird\\name","action":"allowed"}"#)
        #expect(RawLogFields.string(text, RawLogFields.qname).map { String(decoding: $0, as: UTF8.self) } == #"we\"ird\\name"#)
        #expect(RawLogFields.string(text, RawLogFields.action).map { String(decoding: $0, as: UTF8.self) } == "allowed")
        #expect(RawLogFields.string(text, RawLogFields.sni) == nil)
        // Unterminated, or longer than the bound: nothing.
        #expect(RawLogFields.string(Self.bytes(#"{"qname":"abc"#), RawLogFields.qname) == nil)
        #expect(RawLogFields.string(Self.bytes("{\"qname\":\"" + String(repeating: "a", count: 2000) + "\"}"), RawLogFields.qname) == nil)
        #expect(RawLogFields.string(Self.bytes(""), RawLogFields.qname) == nil)
    }

    @Test(arguments: [
        ("2026-12-02T04:16:47.479240Z", 1_796_184_960 as Int?),
        ("1970-01-01T00:00:59Z", 0),
        ("2000-02-29T23:59:00Z", 951_868_740),
        ("2026-13-02T04:16:47Z", nil),
        ("2026-12-02T24:00:00Z", nil),
        ("2026-12-0xT04:16:47Z", nil),
        ("2026-12-02", nil),
        ("", nil),
    ] as [(String, Int?)])
    func minutes(text: String, expected: Int?) {
        #expect(RawLogFields.minute(Self.bytes(text)) == expected)
    }

    @Test func filtersParseAndRefuseWithTheParameterNamed() throws {
        #expect(try LiveFeed.Filter.parse(["client": "10.53.1.0/24", "action": "Blocked", "proto": "udp", "type": "aaaa", "domain": ".Example.test."]).get()
                == LiveFeed.Filter(client: "10.53.1.0/24", domain: "example.test", action: "blocked", proto: "udp", type: "AAAA"))
        #expect(try LiveFeed.Filter.parse(["client": "", "domain": " "]).get() == LiveFeed.Filter())
        for (key, value) in [("client", "router!"), ("client", "a b"), ("client", "1234"), ("action", "nuked"), ("proto", "http"), ("type", "A;drop"), ("domain", "a\"b"),
                             ("domain", String(repeating: "a", count: 300)), ("client", "10.53.1.0/99")] {
            guard case .failure(let problem) = LiveFeed.Filter.parse([key: value]) else {
                Issue.record("\(key)=\(value) accepted")
                continue
            }
            #expect(problem.reason.hasPrefix(key + ":"))
        }
    }

    @Test func filtersMatchOnTheLinesBytes() throws {
        let line = Self.bytes(Self.line())
        func filter(_ items: [String: String]) throws -> LiveFeed.Filter { try LiveFeed.Filter.parse(items).get() }
        #expect(try filter([:]).matches(line))
        #expect(try filter(["action": "blocked", "proto": "udp", "type": "A"]).matches(line))
        #expect(try !filter(["action": "allowed"]).matches(line))
        #expect(try filter(["client": "10.53.1.2"]).matches(line) && filter(["client": "10.53.1.0/24"]).matches(line))
        #expect(try !filter(["client": "10.53.1.20"]).matches(line) && !filter(["client": "10.53.2.0/24"]).matches(line))
        #expect(try filter(["domain": "example.test"]).matches(line) && filter(["domain": "ads.example.test"]).matches(line))
        #expect(try !filter(["domain": "xample.test"]).matches(line))
        #expect(try filter(["client": "fd53:1::2"]).matches(Self.bytes(Self.line(client: "[fd53:1::2]:4000"))))
        // By name (clients.names): the name, or its first labels; a line without one does not match.
        let named = Self.bytes(Self.line().replacingOccurrences(of: "\"client\":\"10.53.1.2:5353\"", with: "\"client\":\"10.53.1.2:5353\",\"client_name\":\"kids-ipad.lan\""))
        #expect(try filter(["client": "Kids-iPad"]).matches(named) && filter(["client": "kids-ipad.lan"]).matches(named))
        #expect(try !filter(["client": "kids"]).matches(named) && !filter(["client": "kids-ipad"]).matches(line))
        // A line that is not an entry matches no filter but the empty one.
        #expect(try !filter(["action": "blocked"]).matches(Self.bytes("garbage")))
    }

    @Test func theOverviewCountsTheLogPerMinuteThenTheCounters() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("overview-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("queries.jsonl").path
        let now = 1_796_185_400.0  // 04:23:20 on 2026-12-02
        var text = Self.line(time: "2026-12-02T04:21:05Z", action: "blocked") + "\n"
        text += Self.line(time: "2026-12-02T04:21:59Z", qname: "ok.example.test", action: "allowed") + "\n"
        text += Self.line(time: "2026-12-02T04:22:00Z", client: "10.53.1.3:1", server: "10.53.3.53:53", qname: "ok.example.test", action: "allowed") + "\n"
        text += Self.line(time: "2026-12-01T04:00:00Z", action: "allowed") + "\n"  // older than 24 h: left out
        text += "not a log line\n{\"time\":\"2026-12-02T04:22:10Z\"}\n"
        try (Self.line(time: "2026-12-02T04:20:00Z") + "\n").write(toFile: path + ".1", atomically: true, encoding: .utf8)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let tracker = OverviewTracker(logPath: path)
        tracker.turn(now: now, queries: 100, blocked: 10)
        #expect(!tracker.backfilling)
        let minutes = tracker.perMinute(now: now)
        #expect(minutes.count == 1440 && minutes.last?.start == 1_796_185_380)
        func at(_ start: Int) -> OverviewTracker.Minute? { minutes.first { $0.start == start } }
        #expect(at(1_796_185_200) == .init(start: 1_796_185_200, queries: 1, blocked: 1))  // 04:20, from the rotated file
        #expect(at(1_796_185_260) == .init(start: 1_796_185_260, queries: 2, blocked: 1))  // 04:21
        #expect(at(1_796_185_320) == .init(start: 1_796_185_320, queries: 1, blocked: 0))  // 04:22
        // From now on the counters: their growth lands in the current minute (04:23).
        tracker.turn(now: now + 1, queries: 130, blocked: 12)
        #expect(tracker.perMinute(now: now + 1).last == .init(start: 1_796_185_380, queries: 30, blocked: 2))
        // A counter that went back (a restart) adds nothing.
        tracker.turn(now: now + 2, queries: 5, blocked: 0)
        #expect(tracker.perMinute(now: now + 2).last == .init(start: 1_796_185_380, queries: 30, blocked: 2))
        let top = tracker.topLists(now: now)
        #expect(top.entries == 5 && top.since == "2026-12-02T04:20:00Z")  // the day-old line too: the top lists go by bytes, not age
        #expect(top.domains.first?.0 == "ads.example.test" && top.blocked.map(\.0) == ["ads.example.test"])
        #expect(top.clients.first! == ("10.53.1.2", 4))
        #expect(top.servers.contains { $0.server == "10.53.3.53" && $0.queries == 1 && $0.clients == 1 })
    }

    @Test func theLiveFeedSendsAtMostItsShareAndSaysWhatItLeftOut() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("live-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("queries.jsonl").path
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        let feed = LiveFeed(path: path, filter: try LiveFeed.Filter.parse(["action": "blocked"]).get(), maxBytesPerTurn: 64 << 10, maxLinesPerTurn: 5)
        guard case .bytes(let opening) = feed.next(now: 1) else { Issue.record("no opening"); return }
        #expect(String(decoding: opening, as: UTF8.self) == "retry: 2000\n\n")
        #expect({ if case .idle = feed.next(now: 2) { return true }; return false }())
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        var lines = ""
        for i in 0..<20 { lines += Self.line(qname: "n\(i).example.test", action: i % 2 == 0 ? "blocked" : "allowed") + "\n" }
        handle.write(Data(lines.utf8))
        guard case .bytes(let batch) = feed.next(now: 3) else { Issue.record("nothing sent"); return }
        let sent = String(decoding: batch, as: UTF8.self)
        // Newest first: the five newest blocked lines found, the ten older lines never looked at.
        #expect(sent.hasPrefix("event: skipped\ndata: {\"lines\":10,\"bytes\":0}\n\n"))
        #expect(sent.components(separatedBy: "data: {\"time\"").count - 1 == 5)
        #expect(sent.contains("n18.example.test") && !sent.contains("n1.example.test") && !sent.contains("n8.example.test"))
        // Far more than a turn's bytes: it jumps ahead and says so.
        var big = ""
        while big.utf8.count < 200 << 10 { big += Self.line(qname: "bulk.example.test") + "\n" }  // over the test's 64 KiB a turn
        handle.write(Data(big.utf8))
        guard case .bytes(let after) = feed.next(now: 4) else { Issue.record("nothing sent"); return }
        let text = String(decoding: after, as: UTF8.self)
        #expect(text.hasPrefix("event: skipped\n"))
        #expect(!text.contains("\"bytes\":0}"))
        // Quiet for 15 s: a comment, so that a reader that went away is noticed.
        #expect({ if case .bytes(let b) = feed.next(now: 4 + LiveFeed.heartbeatNanoseconds) { return b == Array(": keep-alive\n\n".utf8) }; return false }())
        try handle.close()
    }
}
