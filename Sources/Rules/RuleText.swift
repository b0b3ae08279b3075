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
        guard let m = mapping(path), line >= 1, Int(line) <= m.starts.count else { return nil }
        let start = Int(m.starts[Int(line) - 1])
        let end = Int(line) < m.starts.count ? Int(m.starts[Int(line)]) : m.size
        guard end > start, end - start <= Self.maxLine else { return nil }
        let bytes: UnsafeRawBufferPointer
        if let block = block(of: m, at: start), end <= block.offset + block.count {
            bytes = UnsafeRawBufferPointer(start: block.base + (start - block.offset), count: end - start)
        } else {
            // Across a block's end (or the block could not be read): the line alone.
            let n = pread(m.fd, lineBuffer.baseAddress, end - start, off_t(start))
            guard n > 0 else { return nil }
            bytes = UnsafeRawBufferPointer(rebasing: lineBuffer[0..<n])
        }
        var first = 0, last = bytes.count
        func blank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0d || b == 0x0a }
        while last > first && blank(bytes[last - 1]) { last -= 1 }
        while first < last && blank(bytes[first]) { first += 1 }
        return body(UnsafeRawBufferPointer(rebasing: bytes[first..<last]))
    }

    /// Whether line `line` exists in the file as last seen.
    public func hasLine(_ line: UInt32, of path: String) -> Bool {
        guard let m = mapping(path) else { return false }
        return line >= 1 && Int(line) <= m.starts.count
    }

    /// Looks at the file now, whenever it was last looked at; true when it changed. For a line
    /// the file as last seen does not have: the list was replaced less than a second ago (a
    /// reload's rules reach the log before the once-a-second look sees the new file).
    public func lookAgain(_ path: String) -> Bool {
        let before = mappings[path]?.version
        checkedAt[path] = nil
        refresh(path)
        return mappings[path]?.version != before
    }

    /// Longer lines are not read back (no list format has them; the log says null).
    static let maxLine = 8192
    private let lineBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: RuleText.maxLine, alignment: 8)

    // MARK: Blocks

    /// The file is read in aligned blocks kept in a small cache, least recently used out: a
    /// restart under a blocked-heavy load reads back thousands of rules a second, mostly
    /// neighbours in the same lists, and one pread per line was a syscall per log line
    /// (1.7 % of the relay's samples in the blocked benchmark with the log on).
    static let blockSize = 64 << 10
    static let blockCount = 32
    private let blockMemory = UnsafeMutableRawBufferPointer.allocate(byteCount: RuleText.blockSize * RuleText.blockCount, alignment: 64)
    /// Per cache slot: the file version and block offset it holds (version 0: empty), its bytes, and when it was last used.
    private var blockKeys = [(version: UInt64, offset: Int, count: Int, used: UInt64)](repeating: (0, 0, 0, 0), count: RuleText.blockCount)
    private var blockClock: UInt64 = 0

    private func block(of m: Mapping, at position: Int) -> (base: UnsafeRawPointer, offset: Int, count: Int)? {
        let offset = position & ~(Self.blockSize - 1)
        blockClock &+= 1
        var victim = 0
        for i in 0..<Self.blockCount {
            let key = blockKeys[i]
            if key.version == m.version && key.offset == offset {
                blockKeys[i].used = blockClock
                return (UnsafeRawPointer(blockMemory.baseAddress! + i * Self.blockSize), offset, key.count)
            }
            if key.used < blockKeys[victim].used { victim = i }
        }
        let base = blockMemory.baseAddress! + victim * Self.blockSize
        let n = pread(m.fd, base, min(Self.blockSize, m.size - offset), off_t(offset))
        guard n > 0 else {
            blockKeys[victim] = (0, 0, 0, 0)
            return nil
        }
        blockKeys[victim] = (m.version, offset, n, blockClock)
        return (UnsafeRawPointer(base), offset, n)
    }

    /// The mapping of `path`, the last one asked for remembered (a log line's rule is usually
    /// from the same list as the last one's: no hashing of the path then).
    private func mapping(_ path: String) -> Mapping? {
        if let last = lastMapping, last.path == path { return last.mapping }
        guard let m = mappings[path] else { return nil }
        lastMapping = (path, m)
        return m
    }

    private var lastMapping: (path: String, mapping: Mapping)?

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
        if lastMapping?.path == path { lastMapping = nil }
        if let m = mappings.removeValue(forKey: path) { close(m.fd) }
    }

    deinit {
        lineBuffer.deallocate()
        blockMemory.deallocate()
        for m in mappings.values { close(m.fd) }
    }
}
