import Glibc
import RelayCore

/// The text of a list's line, read back when the query log needs it (the compiled rule set keeps
/// no rule text). Each list is indexed by line starts once per file version, then a line is one
/// pread (not a mapping: a list truncated while mapped would raise SIGBUS). Whether a file
/// changed (inode, size, mtime) is checked at most once a second; `version(of:)` changes when it
/// did. Callers cache the texts they use. One thread only.
public final class RuleText {
    private struct Mapping {
        /// Kept open while this version is in use (closed when the file changes).
        var fd: Int32
        var size: Int
        var inode: UInt64
        var mtime: Int
        /// Offset of each line's start (line 1 at index 0).
        var starts: [UInt32]
        var version: UInt64
    }

    private var mappings: [String: Mapping] = [:]
    private var checkedAt: [String: UInt64] = [:]
    private var nextVersion: UInt64 = 1

    public init() {}

    /// A number that changes whenever the file at `path` is seen to change (0: unreadable).
    public func version(of path: String) -> UInt64 {
        refresh(path)
        return mappings[path]?.version ?? 0
    }

    /// Line `line` (1-based) of the file at `path`, trimmed, or nil.
    public func line(_ line: UInt32, of path: String) -> String? {
        refresh(path)
        return withLine(line, of: path) { String(decoding: $0, as: UTF8.self) }
    }

    /// Line `line` (1-based) of the file at `path` as it last was seen (`version(of:)` or
    /// `line(_:of:)` look again), trimmed of blanks and the line end, handed to `body` as bytes
    /// (valid during the call only); nil when there is no such line. One pread into a buffer
    /// kept for the next call: the query log reads each rule it logs once, and a restart under
    /// load reads thousands a second.
    public func withLine<R>(_ line: UInt32, of path: String, _ body: (UnsafeRawBufferPointer) -> R) -> R? {
        guard let m = mappings[path], line >= 1, Int(line) <= m.starts.count else { return nil }
        let start = Int(m.starts[Int(line) - 1])
        let end = Int(line) < m.starts.count ? Int(m.starts[Int(line)]) : m.size
        guard end > start, end - start <= Self.maxLine else { return nil }
        let n = pread(m.fd, lineBuffer.baseAddress, end - start, off_t(start))
        guard n > 0 else { return nil }
        var first = 0, last = n
        func blank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0d || b == 0x0a }
        while last > first && blank(lineBuffer[last - 1]) { last -= 1 }
        while first < last && blank(lineBuffer[first]) { first += 1 }
        return body(UnsafeRawBufferPointer(rebasing: lineBuffer[first..<last]))
    }

    /// Longer lines are not read back (no list format has them; the log says null).
    static let maxLine = 8192
    private let lineBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: RuleText.maxLine, alignment: 8)

    private func refresh(_ path: String) {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let now = UInt64(ts.tv_sec)
        if mappings[path] != nil, let last = checkedAt[path], last == now { return }
        checkedAt[path] = now
        var info = stat()
        guard stat(path, &info) == 0 else {
            drop(path)
            return
        }
        let inode = UInt64(info.st_ino), size = Int(info.st_size)
        let mtime = Int(info.st_mtim.tv_sec) &* 1_000_000_000 &+ Int(info.st_mtim.tv_nsec)
        if let m = mappings[path], m.inode == inode, m.size == size, m.mtime == mtime { return }
        drop(path)
        // Never blocks: a FIFO put at a list's path must not hang the query log's writer.
        guard case .success(let fd) = RegularFile.open(path) else { return }
        var starts: [UInt32] = [0]
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var offset = 0
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            for i in 0..<n where chunk[i] == 0x0a { starts.append(UInt32(truncatingIfNeeded: offset + i + 1)) }
            offset += n
        }
        if let last = starts.last, Int(last) >= offset { starts.removeLast() }
        mappings[path] = Mapping(fd: fd, size: offset, inode: inode, mtime: mtime, starts: starts, version: nextVersion)
        nextVersion += 1
    }

    private func drop(_ path: String) {
        if let m = mappings.removeValue(forKey: path) { close(m.fd) }
    }

    deinit {
        lineBuffer.deallocate()
        for m in mappings.values { close(m.fd) }
    }
}
