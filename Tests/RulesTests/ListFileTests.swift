import Foundation
import Testing
@testable import Rules

/// `ListFile.survey` reads in 64 KiB chunks: what it looks for must be found across a chunk's end.
@Suite struct ListFileTests {
    static func write(_ text: String) throws -> String { try temporaryList(text, prefix: "listfile") }

    /// Filler lines up to `bytes` bytes, each "||fNNNNNN.test^\n" (16 bytes).
    static func filler(_ bytes: Int) -> String {
        (0..<(bytes / 16)).map { String(format: "||f%06d.test^\n", $0) }.joined()
    }

    @Test(arguments: [1, 4, 8])
    func aBadfilterAcrossTheChunkEndIsSeen(_ before: Int) throws {
        // "badfilter" starts `before` bytes ahead of the 64 KiB mark.
        let target = ListFile.chunkSize - "||ads.test^$".utf8.count - before
        var text = Self.filler(target - 200)
        // One comment line takes the rest, so that the rule's line starts right at `target`.
        text += "!" + String(repeating: "x", count: target - text.utf8.count - 2) + "\n"
        text += "||ads.test^$badfilter\n||ads.test^\n"
        let path = try Self.write(text)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let offset = text.utf8.count - "badfilter\n||ads.test^\n".utf8.count
        #expect(offset < ListFile.chunkSize && offset + 9 > ListFile.chunkSize)
        #expect(try ListFile(path: path).survey(needle: "badfilter").hasNeedle)
        let set = try RuleSetBuilder.load(paths: [path])
        #expect(Array("ads.test".utf8).withUnsafeBytes { set.decide(name: $0, type: 1).verdict } == .pass)
    }

    @Test func aNULPastTheFirstChunkIsReportedOnItsLine() throws {
        let head = Self.filler(ListFile.chunkSize + 4_000)
        let path = try Self.write(head + "||bad\u{0}.test^\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let lines = head.utf8.count / 16
        #expect(try ListFile(path: path).survey(needle: "badfilter").nulLine == lines + 1)
        #expect(throws: RuleLoadError.self) { try RuleSetBuilder.load(paths: [path]) }
    }
}
