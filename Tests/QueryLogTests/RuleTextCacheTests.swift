import Foundation
import Testing
@testable import QueryLog

/// The query log's rule texts: a list line read back as JSON, `null` for lines that are not
/// there, the arena starting over at its limit, and the texts forgotten when the list changes.
@Suite struct RuleTextCacheTests {
    static func text(_ cache: inout RuleTextCache, list: Int = 0, line: UInt32) -> String {
        var out = LineBuffer(capacity: 16)
        defer { out.deallocate() }
        cache.append(list: list, line: line, to: &out)
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

    /// For dnstap's Policy.rule: the text as written (trimmed as the rules read it), nothing for
    /// a line that is not there.
    @Test func rawTextsAreNotQuoted() throws {
        let path = try Self.list("! header\n||ads.example^\n  0.0.0.0 \"quoted\"\\path  \n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        var cache = RuleTextCache(lists: [path], raw: true)
        defer { cache.deallocate() }
        cache.refresh()
        #expect(Self.text(&cache, line: 2) == "||ads.example^")
        #expect(Self.text(&cache, line: 2) == "||ads.example^")
        #expect(Self.text(&cache, line: 3) == "0.0.0.0 \"quoted\"\\path")
        #expect(Self.text(&cache, line: 4) == "")
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

    /// A list replaced (a URL list's new copy) and its new rules logged within the same second:
    /// the line the old file lacks is looked for in the new one, not written as null, and the
    /// texts cached from the old file are dropped with it.
    @Test func aListReplacedWithinTheSecondIsReadAtOnce() throws {
        let path = try Self.list("||old.example^\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        var cache = RuleTextCache(lists: [path])
        defer { cache.deallocate() }
        cache.refresh()
        #expect(Self.text(&cache, line: 1) == "\"||old.example^\"")
        try "||new.example^\n||second.example^\n".write(toFile: path, atomically: true, encoding: .utf8)
        cache.refresh()  // within the second: RuleText has not looked again yet
        #expect(Self.text(&cache, line: 2) == "\"||second.example^\"")
        #expect(Self.text(&cache, line: 1) == "\"||new.example^\"")
    }

    /// Bytes as a list holds them: blanks and CR trimmed, UTF-8 kept, invalid UTF-8 replaced so
    /// that the log line stays JSON, control characters escaped, an overlong line null.
    @Test func oddBytesStayValidJSON() throws {
        let path = NSTemporaryDirectory() + "ruletext-\(UUID().uuidString).txt"
        var bytes = Array("\t||bücher.example^ \r\n".utf8)           // line 1
        bytes += [0x7c, 0x7c, 0xff, 0xfe, 0x2e, 0x74, 0x65, 0x73, 0x74, 0x0a]  // line 2: "||", 2 invalid bytes, ".test"
        bytes += Array("||a\u{01}b.test^\n".utf8)                      // line 3
        bytes += Array(repeating: UInt8(ascii: "x"), count: 9000) + [0x0a]  // line 4
        bytes += Array("||last.test^".utf8)                              // line 5, no line end
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        var cache = RuleTextCache(lists: [path])
        defer { cache.deallocate() }
        cache.refresh()
        for _ in 0..<2 {  // read back, then from the arena
            #expect(Self.text(&cache, line: 1) == "\"||bücher.example^\"")
            #expect(Self.text(&cache, line: 2) == "\"||\u{FFFD}\u{FFFD}.test\"")
            #expect(Self.text(&cache, line: 3) == "\"||a\\u0001b.test^\"")
            #expect(Self.text(&cache, line: 4) == "null")
            #expect(Self.text(&cache, line: 5) == "\"||last.test^\"")
        }
        for line in UInt32(1)...5 {
            let json = "[" + Self.text(&cache, line: line) + "]"
            #expect((try? JSONSerialization.jsonObject(with: Data(json.utf8))) != nil, "line \(line)")
        }
    }
}
