import Foundation
import Testing
@testable import Rules

/// Reading a list's lines back (the query log's rule texts) through the block cache: any line
/// in any order, lines across a block's end, lines past the end, and a file that changes.
@Suite struct RuleTextTests {
    static func file(_ text: String) throws -> String { try temporaryList(text, prefix: "ruletext") }

    @Test func everyLineReadsBackInAnyOrderAcrossBlocks() throws {
        // About 300 KiB: five blocks, with lines of varied length so that some cross a block's end.
        let lines = (1...9000).map { "||name-\($0)-" + String(repeating: "x", count: $0 % 37) + ".example^" }
        let path = try Self.file(lines.joined(separator: "\n") + "\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let text = RuleText()
        #expect(text.version(of: path) != 0)
        var generator = SystemRandomNumberGenerator()
        for number in (1...9000).shuffled(using: &generator) {
            #expect(text.line(UInt32(number), of: path) == lines[number - 1], "line \(number)")
        }
        #expect(text.line(0, of: path) == nil && text.line(9001, of: path) == nil)
        // The lines on both sides of each block boundary.
        var offset = 0
        for (i, line) in lines.enumerated() {
            let end = offset + line.utf8.count + 1
            if offset / RuleText.blockSize != (end - 1) / RuleText.blockSize {
                #expect(text.line(UInt32(i + 1), of: path) == line, "line \(i + 1) across a block's end")
            }
            offset = end
        }
    }

    @Test func aChangedFileIsReadAgainNotServedFromOldBlocks() throws {
        let path = try Self.file("||old-one.example^\n||old-two.example^\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let text = RuleText()
        #expect(text.line(2, of: path) == "||old-two.example^")
        let before = text.version(of: path)
        try "||new-one.example^\n  ||new-two.example^  \n".write(toFile: path, atomically: true, encoding: .utf8)
        // The relay looks again at most once a second.
        var seen = text.line(2, of: path)
        for _ in 0..<30 where seen != "||new-two.example^" {
            usleep(100_000)
            seen = text.line(2, of: path)
        }
        #expect(seen == "||new-two.example^")
        #expect(text.version(of: path) != before)
        try FileManager.default.removeItem(atPath: path)
        for _ in 0..<30 where text.version(of: path) != 0 { usleep(100_000) }
        #expect(text.line(1, of: path) == nil)
    }

    /// A list replaced less than a second after it was last looked at: a line the old file did
    /// not have makes `lookAgain` read the new one at once (a URL list's reload reaches the log
    /// before the once-a-second look), and says when nothing changed.
    @Test func aLineTheOldFileLacksIsLookedForInTheNewOne() throws {
        let path = try Self.file("||one.example^\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let text = RuleText()
        #expect(text.line(1, of: path) == "||one.example^")
        #expect(text.hasLine(1, of: path) && !text.hasLine(2, of: path) && !text.hasLine(0, of: path))
        #expect(!text.lookAgain(path))  // unchanged
        try "||one.example^\n||two.example^\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(text.lookAgain(path))
        #expect(text.hasLine(2, of: path))
        #expect(text.withLine(2, of: path) { String(decoding: $0, as: UTF8.self) } == "||two.example^")
        #expect(!text.hasLine(1, of: path + ".missing"))
    }
}
