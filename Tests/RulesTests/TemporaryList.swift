import Foundation

/// A list file with `text` in the temporary directory, for tests that read files (the caller
/// removes it).
func temporaryList(_ text: String, prefix: String = "list") throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString).txt").path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}
