import Foundation
import RelayCore

/// Runs the lab's helper programs (ip, knotd, kdig). The lab is a test bench, not the product:
/// the relay itself never starts a subprocess.
enum Shell {
    /// Runs `arguments` and returns its standard output; throws with its standard error when it fails.
    @discardableResult
    static func run(_ arguments: [String], allowFailure: Bool = false) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: output, as: UTF8.self)
        if process.terminationStatus != 0 && !allowFailure {
            throw RelayError(.lab, "`\(arguments.joined(separator: " "))` failed (\(process.terminationStatus)): \(String(decoding: errors, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return text
    }

    /// Starts a long-running program, output to `log`; returns its pid (`ip netns exec` execs its
    /// command, so that is the program's own pid).
    static func spawn(_ arguments: [String], log: String) throws -> Int32 {
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process.processIdentifier
    }

    static func which(_ program: String) -> Bool {
        (try? run(["sh", "-c", "command -v \(program)"])) != nil
    }
}
