import Glibc
import LinuxNet
import RelayCore

/// The checks a downloaded list passes before it replaces the copy in service, cheap enough to
/// run on the whole body (one read pass): not empty, no NUL byte (binary), not an HTML page (a
/// captive portal's or an error page sent with 200), the pinned hash when there is one. Whether
/// any rule can be read from it is the rule loader's call, at the reload that follows.
enum ListContent {
    static func check(_ path: String, bytes: Int, sha256: String, pin: String?) throws(DownloadError) {
        guard bytes > 0 else { throw DownloadError(.content, "the server sent an empty list") }
        if let pin, pin != sha256 {
            throw DownloadError(.content, "the content's SHA-256 is \(sha256), not the pinned \(pin)")
        }
        let fd: Int32
        do { fd = try FileCalls.open(path, flags: O_RDONLY | O_CLOEXEC) } catch {
            throw DownloadError(.storage, "cannot read back \(path): \(error)")
        }
        defer { FileCalls.close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { buffer.deallocate() }
        var first = true
        var line = 1
        while true {
            let count: Int
            do { count = try FileCalls.read(fd, into: buffer) } catch { throw DownloadError(.storage, "cannot read back \(path): \(error)") }
            if count == 0 { break }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[..<count])
            if first {
                first = false
                if looksLikeHTML(chunk) { throw DownloadError(.content, "the server sent an HTML page, not a list") }
            }
            if let nul = chunk.firstIndex(of: 0) {
                line += chunk[..<nul].reduce(0) { $0 + ($1 == 10 ? 1 : 0) }
                throw DownloadError(.content, "not a text list (a NUL byte on line \(line))")
            }
            line += chunk.reduce(0) { $0 + ($1 == 10 ? 1 : 0) }
        }
    }

    /// Whether the body starts (after blanks and a byte-order mark) with `<!doctype html`,
    /// `<html`, `<head` or `<?xml`: no list format starts with `<`.
    static func looksLikeHTML(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { i = 3 }
        while i < bytes.count, [0x20, 0x09, 0x0D, 0x0A].contains(bytes[i]) { i += 1 }
        let start = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[i..<min(bytes.count, i + 16)]), as: UTF8.self).lowercased()
        return ["<!doctype html", "<html", "<head", "<?xml", "<body"].contains { start.hasPrefix($0) }
    }
}
