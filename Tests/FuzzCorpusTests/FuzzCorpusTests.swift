import Foundation
import FuzzTargets
import Testing

/// Every saved input of every fuzz target (Fuzz/corpus/TARGET/*), replayed through the same
/// function libFuzzer calls: a crash once found and fixed stays fixed. The corpora hold the
/// seeds (real queries and answers from the lab, RFC 9001 vectors, list lines, configs, zones)
/// and what fuzzing found worth keeping.
@Suite struct FuzzCorpusTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz/corpus")

    static func inputs(_ target: String) -> [URL] {
        let dir = root.appendingPathComponent(target)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().map { dir.appendingPathComponent($0) }
    }

    @Test(arguments: FuzzTargets.all.map(\.name))
    func everySavedInputRuns(target name: String) throws {
        let target = try #require(FuzzTargets.target(named: name))
        let files = Self.inputs(name)
        #expect(!files.isEmpty, "Fuzz/corpus/\(name) has no seeds")
        for file in files {
            let data = try Data(contentsOf: file)
            data.withUnsafeBytes { target.run($0) }
        }
    }
}
