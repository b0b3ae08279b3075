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

    static func named(_ client: String, _ name: String?) -> QueryLogEntry {
        let field = name.map { #","client_name":"\#($0)""# } ?? ""
        return QueryLogEntry(line: #"{"time":"2026-12-02T07:00:00Z","client":"\#(client):5353"\#(field),"server":"10.53.2.53:53","proto":"udp","qname":"www.lab.test","action":"allowed"}"#)!
    }

    /// `tail --client` takes an address, a CIDR, or a client's name (or its first labels).
    @Test func aClientFilterMatchesNames() {
        var filter = QueryLogFilter()
        filter.client = "Kids-iPad"
        #expect(filter.matches(Self.named("10.53.1.2", "kids-ipad")))
        #expect(filter.matches(Self.named("10.53.1.2", "kids-ipad.lan")))
        #expect(!filter.matches(Self.named("10.53.1.2", "kids-ipad2")))
        #expect(!filter.matches(Self.named("10.53.1.2", nil)))
        filter.client = "10.53.1.0/24"
        #expect(filter.matches(Self.named("10.53.1.2", "kids-ipad")))
        filter.client = "10.53.1.2"
        #expect(filter.matches(Self.named("10.53.1.2", nil)))
    }

    /// `stats`: top clients carry their latest name; a name with two addresses is one row by name.
    @Test func statsGroupClientsByName() {
        var stats = QueryLogStats()
        for entry in [Self.named("10.53.1.2", "kids-ipad"), Self.named("[fd53:1::2]", "kids-ipad"), Self.named("10.53.1.2", "kids-ipad"),
                      Self.named("10.53.1.3", nil)] {
            stats.add(entry)
        }
        let text = stats.text(top: 5)
        #expect(text.contains("2        10.53.1.2 (kids-ipad)"))
        #expect(text.contains("top clients by name\n  3        kids-ipad"))
        let json = stats.json(top: 5)
        let names = json["top_client_names"] as? [[String: Any]]
        #expect(names?.first?["name"] as? String == "kids-ipad" && names?.first?["count"] as? Int == 3)
    }
}
