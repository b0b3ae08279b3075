import Testing
@testable import QueryLog

/// `tail` and `stats` read files anyone may have written: no line may crash them.
@Suite struct QueryLogEntryTests {
    static func line(time: String) -> String {
        #"{"time":"\#(time)","client":"10.53.1.2:5353","server":"10.53.2.53:53","proto":"udp","qname":"www.lab.test","action":"allowed"}"#
    }

    @Test func aGoodTimeIsRead() throws {
        let entry = try #require(QueryLogEntry(line: Self.line(time: "2026-11-26T21:13:32.5Z")))
        #expect(entry.timestamp == 1_795_727_612.5)
    }

    /// Found by the `log-line` fuzz target: an hour of 10^13 trapped converting to Int32.
    @Test(arguments: ["2026-11-27T10000000000000:00:00Z", "99999999999-01-01T00:00:00Z", "2026-13-01T00:00:00Z",
                      "2026-01-01T24:00:00Z", "2026-01-01T00:60:00Z", "2026-01-01T00:00:61Z", "2026-01-01T00:00:nanZ",
                      "2026-01-01T00:00:1e300Z", "2026-01-01T00:00:infZ", "1969-12-31T23:59:59Z", "not a time"])
    func anImpossibleTimeIsNoTime(time: String) throws {
        let entry = try #require(QueryLogEntry(line: Self.line(time: time)))
        #expect(entry.timestamp == 0)
    }
}
