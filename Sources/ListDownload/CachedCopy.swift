import Glibc
import LinuxNet
import RelayCore

/// What is known of a list's cached copy, kept beside it in `<copy>.meta` (one `key value` per
/// line) so that a restart sends the same conditional request and `check` can report the last
/// download. Read tolerantly: a damaged file only loses the validators (the next request is
/// unconditional), never the copy.
public struct CachedCopy: Equatable, Sendable {
    public var url: String
    public var etag: String?
    public var lastModified: String?
    /// Wall-clock seconds of the last answer that confirmed the copy (200 or 304).
    public var confirmed: Double?
    /// Wall-clock seconds of the last download that changed it.
    public var changed: Double?
    public var bytes = 0
    public var sha256: String?
    /// The last attempt and, when it failed, why; consecutive failures.
    public var attempted: Double?
    public var lastError: String?
    public var failures = 0

    public init(url: String) { self.url = url }

    public static func metadataPath(of copy: String) -> String { copy + ".meta" }

    /// Whether the file at `copy` is still the one downloaded: its size, and no change after the
    /// download (a second's grace). One edited or damaged on disk is not, and is fetched again
    /// without validators.
    public func describes(copy: String) -> Bool {
        var info = stat()
        guard stat(copy, &info) == 0, Int(info.st_size) == bytes, let changed else { return false }
        return Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9 <= changed + 1
    }

    /// The metadata of the copy at `copy`, or nil when there is none (or it is for another URL).
    public static func read(copy: String, url: String) -> CachedCopy? {
        guard case .success(let bytes) = RegularFile.read(metadataPath(of: copy), limit: 64 << 10) else { return nil }
        var out = CachedCopy(url: url)
        var sameURL = false
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            guard let space = line.firstIndex(of: " ") else { continue }
            let key = line[..<space], value = String(line[line.index(after: space)...])
            switch key {
            case "url": sameURL = value == url
            case "etag": out.etag = value
            case "last_modified": out.lastModified = value
            case "confirmed": out.confirmed = Double(value)
            case "changed": out.changed = Double(value)
            case "bytes": out.bytes = Int(value) ?? 0
            case "sha256": out.sha256 = value
            case "attempted": out.attempted = Double(value)
            case "error": out.lastError = value
            case "failures": out.failures = Int(value) ?? 0
            default: continue  // a later version's key
            }
        }
        return sameURL ? out : nil
    }

    /// Writes the metadata atomically (a temporary file renamed over the old one).
    public func write(copy: String) throws(DownloadError) {
        var text = "url \(url)\n"
        func add(_ key: String, _ value: String?) {
            guard let value, !value.contains("\n") else { return }
            text += "\(key) \(value)\n"
        }
        add("etag", etag)
        add("last_modified", lastModified)
        add("confirmed", confirmed.map { String(Int($0)) })
        add("changed", changed.map { String(Int($0)) })
        add("bytes", String(bytes))
        add("sha256", sha256)
        add("attempted", attempted.map { String(Int($0)) })
        add("error", lastError)
        add("failures", String(failures))
        let path = Self.metadataPath(of: copy), temporary = path + ".tmp"
        do {
            let fd = try FileCalls.open(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode: 0o644)
            defer { FileCalls.close(fd) }
            var bytes = Array(text.utf8)
            var offset = 0
            while offset < bytes.count {
                offset += try bytes.withUnsafeMutableBytes { try FileCalls.write(fd, UnsafeRawBufferPointer(rebasing: $0[offset...])) }
            }
            bytes.removeAll()
            try FileCalls.rename(temporary, to: path)
        } catch {
            throw DownloadError(.storage, "cannot write \(path): \(error)")
        }
    }
}
