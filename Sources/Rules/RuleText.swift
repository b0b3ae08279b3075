import Glibc

/// The text of a list's line, read back from the file when the query log needs it: an index of
/// line starts is built once per file version (path, inode, size, mtime), then each line is one
/// pread. The compiled rule set keeps no rule text, so this is how the log names its rules.
/// One thread only (the log writer).
public final class RuleText {
    private struct Index {
        var inode: UInt64
        var size: Int
        var mtime: Int
        /// Byte offset of each line's start (line 1 at index 0).
        var starts: [UInt32]
    }

    private var indexes: [String: Index] = [:]
    private var texts: [String: [UInt32: String]] = [:]

    public init() {}

    /// Line `line` (1-based) of the file at `path`, trimmed, or nil.
    public func line(_ line: UInt32, of path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let inode = UInt64(info.st_ino), size = Int(info.st_size), mtime = Int(info.st_mtim.tv_sec) &* 1_000_000_000 &+ Int(info.st_mtim.tv_nsec)
        if let index = indexes[path], index.inode == inode, index.size == size, index.mtime == mtime {
            if let text = texts[path]?[line] { return text }
        } else {
            guard let starts = Self.lineStarts(path) else { return nil }
            indexes[path] = Index(inode: inode, size: size, mtime: mtime, starts: starts)
            texts[path] = [:]
        }
        guard let index = indexes[path], line >= 1, Int(line) <= index.starts.count else { return nil }
        let start = Int(index.starts[Int(line) - 1])
        let end = Int(line) < index.starts.count ? Int(index.starts[Int(line)]) - 1 : index.size
        guard end >= start, end - start <= 8192 else { return nil }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: end - start)
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(start)) }
        guard n == end - start else { return nil }
        while let last = bytes.last, last == 0x0a || last == 0x0d { bytes.removeLast() }
        let text = String(decoding: bytes, as: UTF8.self).trimmingWhitespace()
        // Keep the texts of rules that decide often; bound the memory.
        if texts[path, default: [:]].count > 10_000 { texts[path] = [:] }
        texts[path, default: [:]][line] = String(text)
        return String(text)
    }

    private static func lineStarts(_ path: String) -> [UInt32]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var starts: [UInt32] = [0]
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var offset = 0
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            for i in 0..<n where chunk[i] == 0x0a { starts.append(UInt32(truncatingIfNeeded: offset + i + 1)) }
            offset += n
        }
        if let last = starts.last, Int(last) == offset { starts.removeLast() }
        return starts
    }
}
