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
            while i < end {
                if buffer[i] == 0x0a {
                    number += 1
                    if overlong > 0 {
                        body(.overlong(length: overlong + i - start, preview: preview), number)
                        overlong = 0
                    } else {
                        body(.text(UnsafeRawBufferPointer(rebasing: buffer[start..<i])), number)
                    }
                    start = i + 1
                }
                i += 1
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
        let p = needle.utf8Start
        var matched = 0  // bytes of needle matched so far, across chunk ends
        while true {
            let n = read(fd, buffer.baseAddress!, Self.chunkSize)
            if n < 0 {
                if errno == EINTR { continue }
                throw RuleLoadError(list: path, reason: "cannot be read (\(String(cString: strerror(errno))))")
            }
            if n == 0 { break }
            bytes += n
            if memchr(buffer.baseAddress!, 0, n) != nil {
                let offset = memchr(buffer.baseAddress!, 0, n)! - buffer.baseAddress!
                for i in 0..<offset where buffer[i] == 0x0a { lines += 1 }
                return (lines, bytes, lines + 1, found)
            }
            for i in 0..<n {
                let c = buffer[i]
                if c == 0x0a { lines += 1 }
                if !found {
                    if c == p[matched] {
                        matched += 1
                        if matched == n0 { found = true }
                    } else {
                        matched = c == p[0] ? 1 : 0
                    }
                }
            }
        }
        return (lines, bytes, nil, found)
    }
}
