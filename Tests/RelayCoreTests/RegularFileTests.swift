import Foundation
import Testing
@testable import RelayCore

/// Issue 13, finding 4: a FIFO (or any non-regular file) at a list, zone or config path must be
/// refused at once, never waited on.
@Suite struct RegularFileTests {
    static func scratch() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("regular-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func aFIFOIsRefusedWithoutBlocking() throws {
        let dir = Self.scratch()
        let path = dir + "/list.txt"
        #expect(mkfifo(path, 0o600) == 0)
        // No writer: a blocking open would wait here forever.
        #expect(RegularFile.open(path) == .failure(.notRegular("a FIFO")))
        #expect(RegularFile.read(path) == .failure(.notRegular("a FIFO")))
        #expect(RegularFile.Failure.notRegular("a FIFO").reason == "is a FIFO, not a regular file")
    }

    @Test(arguments: [
        ("/dev/null", RegularFile.Failure.notRegular("a character device")),
        ("/", .notRegular("a directory")),
        ("/nonexistent/list.txt", .missing),
    ])
    func otherKindsAreNamed(path: String, expected: RegularFile.Failure) {
        #expect(RegularFile.open(path) == .failure(expected))
    }

    @Test func aRegularFileIsReadWholeAndBlocking() throws {
        let dir = Self.scratch()
        let path = dir + "/a.txt"
        try "hello\n".write(toFile: path, atomically: true, encoding: .utf8)
        guard case .success(let fd) = RegularFile.open(path) else { Issue.record("not opened"); return }
        #expect(fcntl(fd, F_GETFL) & O_NONBLOCK == 0)
        close(fd)
        #expect(RegularFile.read(path) == .success(Array("hello\n".utf8)))
        #expect(RegularFile.read(path, limit: 3) == .failure(.unreadable("larger than 0 MiB")))
    }
}
