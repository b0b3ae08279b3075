import Glibc
import QueryLog

/// A query log file's bytes: read by the follower (lines, partial last line) and each line
/// parsed as an entry and matched against a filter, as `tail` and `stats` do.
enum LogLineTarget {
    nonisolated(unsafe) static var path: String = {
        "/tmp/tproxy-relay-fuzz-log-\(getpid()).jsonl"
    }()

    @Sendable static func run(_ data: UnsafeRawBufferPointer) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        _ = write(fd, data.baseAddress, data.count)
        close(fd)
        let follower = QueryLogFollower(path: path)
        var filter = QueryLogFilter()
        filter.client = "10.53.1.2"
        var stats = QueryLogStats()
        for line in follower.start() + follower.poll() {
            guard let entry = QueryLogEntry(line: line) else { continue }
            _ = filter.matches(entry)
            stats.add(entry)
        }
    }
}
