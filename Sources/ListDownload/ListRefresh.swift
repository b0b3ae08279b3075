import Glibc
import LinuxNet
import RelayCore

/// One refresh of one subscribed list: a conditional download into a temporary file, the checks
/// a list must pass, then the swap into the cache (the copy it replaces kept as `.previous`,
/// for `restorePrevious`). Whatever fails, the copy in service stays and the failure is written
/// into its metadata.
public enum ListRefresh {
    public struct Settings: Sendable {
        public var maxBytes: Int
        public var timeoutSeconds: Int
        public var caFile: String?
        public var mark: UInt32
        public var cancellation: HTTPDownload.Cancellation?

        public init(maxBytes: Int, timeoutSeconds: Int, caFile: String?, mark: UInt32, cancellation: HTTPDownload.Cancellation? = nil) {
            self.cancellation = cancellation
            self.maxBytes = maxBytes
            self.timeoutSeconds = timeoutSeconds
            self.caFile = caFile
            self.mark = mark
        }
    }

    public enum Outcome: Equatable, Sendable {
        /// A new copy is in the cache (the caller reloads the rules).
        case updated(bytes: Int)
        /// 304 Not Modified, or the same bytes again.
        case unchanged
        case failed(DownloadError)
    }

    /// Downloads `url` and, when it passes, makes it the copy at `copy`. `pin`: the content's
    /// required SHA-256.
    public static func run(url: String, pin: String?, copy: String, settings: Settings,
                           now: () -> Double = SystemInfo.wallClockSeconds) -> Outcome {
        var meta = CachedCopy.read(copy: copy, url: url) ?? CachedCopy(url: url)
        // Validators only for the copy as downloaded: a 304 must not keep one edited on disk.
        let haveCopy = meta.describes(copy: copy)
        let directory = copy.lastIndex(of: "/").map { String(copy[..<$0]) } ?? "."
        let download = copy + ".download"
        let outcome: Outcome
        do throws(DownloadError) {
            do { try FileCalls.makeDirectories(directory) } catch {
                throw DownloadError(.storage, "cannot create the cache directory \(directory): \(error)")
            }
            var request = HTTPDownload.Request(url: url, etag: haveCopy ? meta.etag : nil, lastModified: haveCopy ? meta.lastModified : nil,
                                               maxBytes: settings.maxBytes, timeoutSeconds: settings.timeoutSeconds,
                                               caFile: settings.caFile, mark: settings.mark)
            request.cancellation = settings.cancellation
            switch try HTTPDownload.fetch(request, into: download) {
            case .notModified:
                try? FileCalls.unlink(download)
                outcome = .unchanged
            case .modified(let body):
                try ListContent.check(download, bytes: body.bytes, sha256: body.sha256, pin: pin)
                meta.etag = body.etag
                meta.lastModified = body.lastModified
                if haveCopy && body.sha256 == meta.sha256 {
                    try? FileCalls.unlink(download)
                    outcome = .unchanged
                } else {
                    try install(download, as: copy)
                    meta.bytes = body.bytes
                    meta.sha256 = body.sha256
                    meta.changed = now()
                    outcome = .updated(bytes: body.bytes)
                }
            }
            meta.confirmed = now()
            meta.lastError = nil
            meta.failures = 0
        } catch {
            try? FileCalls.unlink(download)
            meta.lastError = "\(error.code): \(error.reason)"
            meta.failures += 1
            outcome = .failed(error)
        }
        meta.attempted = now()
        do { try meta.write(copy: copy) } catch {
            if case .failed = outcome { return outcome }
            return .failed(error)
        }
        return outcome
    }

    /// Puts back the copy an update replaced (the new one would not load), and records why; its
    /// validators are dropped, so that the next request is unconditional.
    public static func restorePrevious(copy: String, url: String, reason: String, now: Double = SystemInfo.wallClockSeconds()) {
        let previous = copy + ".previous"
        if FileCalls.inode(of: previous) != nil {
            try? FileCalls.rename(previous, to: copy)
        } else {
            try? FileCalls.unlink(copy)  // there was none: no copy rather than a broken one
        }
        var meta = CachedCopy.read(copy: copy, url: url) ?? CachedCopy(url: url)
        meta.etag = nil
        meta.lastModified = nil
        meta.sha256 = nil
        meta.lastError = "content: \(reason)"
        meta.failures += 1
        meta.attempted = now
        try? meta.write(copy: copy)
    }

    /// Flushes the download and renames it over the copy, the old copy kept as `.previous`.
    private static func install(_ download: String, as copy: String) throws(DownloadError) {
        do {
            let fd = try FileCalls.open(download, flags: O_RDONLY | O_CLOEXEC)
            defer { FileCalls.close(fd) }
            try FileCalls.sync(fd)
            if FileCalls.inode(of: copy) != nil { try FileCalls.rename(copy, to: copy + ".previous") }
            try FileCalls.rename(download, to: copy)
        } catch {
            throw DownloadError(.storage, "cannot put the download in place of \(copy): \(error)")
        }
    }
}
