import Foundation
import Testing
@testable import Relay

/// The query log's rule texts: a list line read back as JSON, `null` for lines that are not
/// there, the arena starting over at its limit, and the texts forgotten when the list changes.
@Suite struct RuleTextCacheTests {
    static func text(_ cache: inout RuleTextCache, list: Int = 0, line: UInt32) -> String {
        var out = LineBuffer(capacity: 16)
        defer { out.deallocate() }
        cache.appendJSON(list: list, line: line, to: &out)
        return String(decoding: out.bytes, as: UTF8.self)
    }

    static func list(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "ruletext-\(UUID().uuidString).txt"
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }

    @Test func linesComeBackAsJSONAndMissingOnesAsNull() throws {
        let path = try Self.list("! header\n||ads.example^\n  0.0.0.0 \"quoted\"\\path  \n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        var cache = RuleTextCache(lists: [path])
        defer { cache.deallocate() }
        cache.refresh()
        #expect(Self.text(&cache, line: 2) == "\"||ads.example^\"")
        #expect(Self.text(&cache, line: 2) == "\"||ads.example^\"")  // now from the arena
        #expect(Self.text(&cache, line: 3) == "\"0.0.0.0 \\\"quoted\\\"\\\\path\"")
        #expect(Self.text(&cache, line: 0) == "null")
        #expect(Self.text(&cache, line: 4) == "null")
        #expect(Self.text(&cache, line: .max) == "null")
    }

    @Test func aMissingListGivesNull() {
        var cache = RuleTextCache(lists: ["/nonexistent/list.txt"])
        defer { cache.deallocate() }
        cache.refresh()
        #expect(Self.text(&cache, line: 1) == "null")
    }

    @Test func theArenaStartsOverAtItsLimitAndTextsStayRight() throws {
        let lines = (1...200).map { "||name-\($0).example^" }
        let path = try Self.list(lines.joined(separator: "\n") + "\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        var cache = RuleTextCache(lists: [path], arenaLimit: 256)
        defer { cache.deallocate() }
        cache.refresh()
        for round in 0..<2 {
            for i in stride(from: 200, through: 1, by: -7) {
                #expect(Self.text(&cache, line: UInt32(i)) == "\"||name-\(i).example^\"", "round \(round)")
            }
        }
    }

    @Test func anEditedListIsReadAgain() throws {
        let path = try Self.list("||old.example^\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        var cache = RuleTextCache(lists: [path])
        defer { cache.deallocate() }
        cache.refresh()
        #expect(Self.text(&cache, line: 1) == "\"||old.example^\"")
        try "||new.example^\n||second.example^\n".write(toFile: path, atomically: true, encoding: .utf8)
        Thread.sleep(forTimeInterval: 1.1)  // RuleText looks at a file at most once a second
        cache.refresh()
        #expect(Self.text(&cache, line: 1) == "\"||new.example^\"")
        #expect(Self.text(&cache, line: 2) == "\"||second.example^\"")
    }
}
