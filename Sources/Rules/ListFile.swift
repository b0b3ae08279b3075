import Glibc
import RelayCore

/// Reads a list file line by line in fixed-size chunks, so that loading a 45 MB list never holds
/// the whole file: during a reload the old rule set, the new one and one chunk are all that is
/// resident. A line longer than `maxLine` is not kept; it is reported with its length.
struct ListFile {
    let path: String
    static let chunkSize = 1 << 16

    /// One line: its bytes (without the newline) and its number, or only its length when it ran
    /// past the limit.
    enum Line {
        case text(UnsafeRawBufferPointer)
        case overlong(length: Int, preview: [UInt8])
    }

    /// Opens the file; the error says whether it is missing or unreadable.
    static func open(_ path: String) throws(RuleLoadError) -> Int32 {
        switch RegularFile.open(path) {
        case .success(let fd): return fd
        case .failure(.notRegular("a directory")): throw RuleLoadError(list: path, reason: "is a directory, not a list")
        case .failure(let failure): throw RuleLoadError(list: path, reason: failure.reason)
        }
    }

    /// Calls `body` with every line, numbered from 1.
    func forEachLine(maxLine: Int, _ body: (Line, Int) -> Void) throws(RuleLoadError) {
        let fd = try Self.open(path)
        defer { close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunkSize + maxLine + 1, alignment: 16)
        defer { buffer.deallocate() }
        var carried = 0  // bytes of an unfinished line at the start of buffer
        var overlong = 0  // > 0: skipping the rest of a line that is already this long
        var preview: [UInt8] = []
        var number = 0
        while true {
            let n = read(fd, buffer.baseAddress! + carried, Self.chunkSize)
            if n < 0 {
                if errno == EINTR { continue }
                throw RuleLoadError(list: path, reason: "cannot be read (\(String(cString: strerror(errno))))")
            }
            let end = carried + n
            var start = 0
            var i = carried
            let base = buffer.baseAddress!
            // memchr finds the newlines (vectorised in glibc; a byte loop was a tenth of a load).
            while i < end, let newline = memchr(base + i, 0x0a, end - i) {
                i = newline - base
                number += 1
                if overlong > 0 {
                    body(.overlong(length: overlong + i - start, preview: preview), number)
                    overlong = 0
                } else {
                    body(.text(UnsafeRawBufferPointer(rebasing: buffer[start..<i])), number)
                }
                i += 1
                start = i
            }
            if n == 0 {
                // The last line may lack its newline.
                if start < end || overlong > 0 {
                    number += 1
                    if overlong > 0 {
                        body(.overlong(length: overlong + end - start, preview: preview), number)
                    } else {
                        body(.text(UnsafeRawBufferPointer(rebasing: buffer[start..<end])), number)
                    }
                }
                return
            }
            // Keep the unfinished line, or only count it when it is already too long.
            let rest = end - start
            if overlong > 0 || rest > maxLine {
                if overlong == 0 { preview = Array(buffer[start..<min(end, start + 60)]) }
                overlong += rest
                carried = 0
            } else {
                if rest > 0 && start > 0 { memmove(buffer.baseAddress!, buffer.baseAddress! + start, rest) }
                carried = rest
            }
        }
    }

    /// Newlines, whether any NUL byte occurs (and on which line), and whether `needle` occurs:
    /// one pass over the file, for sizing and for deciding which passes are needed.
    func survey(needle: StaticString) throws(RuleLoadError) -> (lines: Int, bytes: Int, nulLine: Int?, hasNeedle: Bool) {
        let fd = try Self.open(path)
        defer { close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        var lines = 0
        var bytes = 0
        var found = false
        let n0 = needle.utf8CodeUnitCount
        // The needle may straddle two chunks: the last n0 - 1 bytes of one are kept before the next.
        var kept = 0
        let base = buffer.baseAddress!
        while true {
            let n = read(fd, base + kept, Self.chunkSize - kept)
            if n < 0 {
                if errno == EINTR { continue }
                throw RuleLoadError(list: path, reason: "cannot be read (\(String(cString: strerror(errno))))")
            }
            if n == 0 { break }
            bytes += n
            let chunk = base + kept
            if let nul = memchr(chunk, 0, n) {
                var p = chunk
                while p < nul, let newline = memchr(p, 0x0a, nul - p) { lines += 1; p = newline + 1 }
                return (lines, bytes, lines + 1, found)
            }
            var p = chunk
            let end = chunk + n
            while p < end, let newline = memchr(p, 0x0a, end - p) { lines += 1; p = newline + 1 }
            if !found { found = Self.find(needle, in: UnsafeRawBufferPointer(start: base, count: kept + n)) }
            kept = min(n0 - 1, kept + n)
            memmove(base, end - kept, kept)
        }
        return (lines, bytes, nil, found)
    }

    /// Whether `needle` occurs in `bytes` (memchr for its first byte, then a comparison).
    private static func find(_ needle: StaticString, in bytes: UnsafeRawBufferPointer) -> Bool {
        let n = needle.utf8CodeUnitCount
        guard n > 0, bytes.count >= n, let base = bytes.baseAddress else { return false }
        let first = Int32(needle.utf8Start[0])
        var p = base
        let last = base + (bytes.count - n)
        while p <= last, let hit = memchr(p, first, last - p + 1) {
            if memcmp(hit, needle.utf8Start, n) == 0 { return true }
            p = UnsafeRawPointer(hit) + 1
        }
        return false
    }
}
