import CCurl
import Crypto
import Glibc
import LinuxNet
import RelayCore
import Synchronization

/// One HTTP(S) GET into a file, through libcurl's easy interface: the one Swift owner of
/// libcurl (docs/DESIGN.md says why libcurl). Blocking; it runs on the list updater's thread or
/// in `update-lists`, never on a worker.
///
/// What it enforces: http and https only (redirects too, at most `maxRedirects`), TLS verified
/// (peer and host name) against the system's CAs plus `caFile`, a timeout for the whole
/// transfer and one for the connection, a size cap checked on the declared length and on every
/// byte received, the bypass mark on every socket it opens, and conditional requests from the
/// copy's validators. The body is hashed (SHA-256) as it is written.
public struct HTTPDownload {
    public struct Request: Sendable {
        public var url: String
        /// Validators of the copy in service: sent as If-None-Match / If-Modified-Since.
        public var etag: String?
        public var lastModified: String?
        public var maxBytes: Int
        public var timeoutSeconds: Int
        public var caFile: String?
        /// SO_MARK for the download's sockets (0: none), so that the relay's own table and
        /// policy routes let them through.
        public var mark: UInt32
        public var maxRedirects = 5
        /// Set from another thread to abandon the transfer within about a second (a stopping service).
        public var cancellation: Cancellation?

        public init(url: String, etag: String? = nil, lastModified: String? = nil, maxBytes: Int, timeoutSeconds: Int,
                    caFile: String? = nil, mark: UInt32 = 0) {
            self.url = url
            self.etag = etag
            self.lastModified = lastModified
            self.maxBytes = maxBytes
            self.timeoutSeconds = timeoutSeconds
            self.caFile = caFile
            self.mark = mark
        }
    }

    /// A flag another thread sets to abandon a transfer.
    public final class Cancellation: Sendable {
        private let flag = Atomic<Bool>(false)
        public init() {}
        public func cancel() { flag.store(true, ordering: .relaxed) }
        public var isCancelled: Bool { flag.load(ordering: .relaxed) }
    }

    public enum Response: Sendable, Equatable {
        /// 200: the body is in the file.
        case modified(Body)
        /// 304: the copy in service is current.
        case notModified
    }

    public struct Body: Sendable, Equatable {
        public var bytes: Int
        public var sha256: String
        public var etag: String?
        public var lastModified: String?
    }

    /// libcurl's process-wide set-up, once, before any thread uses it.
    private static let globalInit: CURLcode = curl_global_init(Int(CURL_GLOBAL_DEFAULT))

    /// Fetches `request.url` into `path` (created or truncated, mode 0644); on any failure the
    /// file's content is undefined and the caller removes it.
    public static func fetch(_ request: Request, into path: String) throws(DownloadError) -> Response {
        guard globalInit == CURLE_OK else { throw DownloadError(.network, "libcurl did not initialise (\(globalInit.rawValue))") }
        let fd: Int32
        do { fd = try FileCalls.open(path, flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode: 0o644) } catch {
            throw DownloadError(.storage, "cannot write \(path): \(error)")
        }
        defer { FileCalls.close(fd) }
        guard let handle = curl_easy_init() else { throw DownloadError(.network, "libcurl: no handle") }
        defer { curl_easy_cleanup(handle) }
        let transfer = Transfer(fd: fd, maxBytes: request.maxBytes, cancellation: request.cancellation)
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        var headers: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headers) }
        if let etag = request.etag { headers = curl_slist_append(headers, "If-None-Match: \(etag)") }
        if let lastModified = request.lastModified { headers = curl_slist_append(headers, "If-Modified-Since: \(lastModified)") }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { errors in
            var set = CURLE_OK
            func check(_ result: CURLcode) { if set == CURLE_OK { set = result } }
            check(tr_curl_set_string(handle, CURLOPT_URL, request.url))
            check(tr_curl_set_pointer(handle, CURLOPT_ERRORBUFFER, errors.baseAddress))
            check(tr_curl_set_string(handle, CURLOPT_PROTOCOLS_STR, "http,https"))
            check(tr_curl_set_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"))
            check(tr_curl_set_long(handle, CURLOPT_FOLLOWLOCATION, 1))
            check(tr_curl_set_long(handle, CURLOPT_MAXREDIRS, request.maxRedirects))
            // Threads: no SIGALRM for timeouts (the relay's signals are for the service).
            check(tr_curl_set_long(handle, CURLOPT_NOSIGNAL, 1))
            check(tr_curl_set_long(handle, CURLOPT_TIMEOUT, request.timeoutSeconds))
            check(tr_curl_set_long(handle, CURLOPT_CONNECTTIMEOUT, min(request.timeoutSeconds, 15)))
            check(tr_curl_set_long(handle, CURLOPT_SSL_VERIFYPEER, 1))
            check(tr_curl_set_long(handle, CURLOPT_SSL_VERIFYHOST, 2))
            if let ca = request.caFile { check(tr_curl_set_string(handle, CURLOPT_CAINFO, ca)) }
            check(tr_curl_set_offset(handle, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(request.maxBytes)))
            // gzip and deflate, decoded by libcurl; the cap counts decoded bytes (the write side).
            check(tr_curl_set_string(handle, CURLOPT_ACCEPT_ENCODING, ""))
            check(tr_curl_set_string(handle, CURLOPT_USERAGENT, "tproxy-relay/\(BuildInfo.version) (list updater)"))
            check(tr_curl_set_list(handle, CURLOPT_HTTPHEADER, headers))
            check(tr_curl_set_data_function(handle, CURLOPT_WRITEFUNCTION, Transfer.write))
            check(tr_curl_set_pointer(handle, CURLOPT_WRITEDATA, context))
            check(tr_curl_set_data_function(handle, CURLOPT_HEADERFUNCTION, Transfer.header))
            check(tr_curl_set_pointer(handle, CURLOPT_HEADERDATA, context))
            if request.cancellation != nil {
                check(tr_curl_set_progress_function(handle, Transfer.progress))
                check(tr_curl_set_pointer(handle, CURLOPT_XFERINFODATA, context))
                check(tr_curl_set_long(handle, CURLOPT_NOPROGRESS, 0))
            }
            if request.mark != 0 {
                check(tr_curl_set_sockopt_function(handle, Transfer.markSocket))
                check(tr_curl_set_pointer(handle, CURLOPT_SOCKOPTDATA, UnsafeMutableRawPointer(bitPattern: UInt(request.mark))))
            }
            guard set == CURLE_OK else { return set }
            return curl_easy_perform(handle)
        }
        var status = 0
        tr_curl_info_long(handle, CURLINFO_RESPONSE_CODE, &status)
        if let failure = transfer.failure { throw failure }
        if code != CURLE_OK {
            let detail = String(cString: errorBuffer)
            throw Self.error(code, detail: detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail, maxBytes: request.maxBytes)
        }
        switch status {
        case 304:
            return .notModified
        case 200:
            return .modified(Body(bytes: transfer.written, sha256: transfer.digest(), etag: transfer.etag, lastModified: transfer.lastModified))
        default:
            throw DownloadError(.status, "the server answered HTTP \(status)")
        }
    }

    private static func error(_ code: CURLcode, detail: String, maxBytes: Int) -> DownloadError {
        switch code {
        case CURLE_OPERATION_TIMEDOUT: return DownloadError(.timeout, detail)
        case CURLE_PARTIAL_FILE: return DownloadError(.truncated, "the body ended early (\(detail))")
        case CURLE_FILESIZE_EXCEEDED: return DownloadError(.oversized, "the list is larger than \(maxBytes) bytes (filters.max_download_size)")
        case CURLE_BAD_CONTENT_ENCODING: return DownloadError(.content, detail)
        case CURLE_ABORTED_BY_CALLBACK: return DownloadError(.network, "abandoned: the relay is stopping")
        default: return DownloadError(.network, detail)
        }
    }
}

/// The state of one transfer, reached from libcurl's callbacks through their context pointer.
private final class Transfer {
    let fd: Int32
    let maxBytes: Int
    var written = 0
    var status = 0
    var etag: String?
    var lastModified: String?
    var failure: DownloadError?
    var hash = SHA256()
    let cancellation: HTTPDownload.Cancellation?

    init(fd: Int32, maxBytes: Int, cancellation: HTTPDownload.Cancellation?) {
        self.fd = fd
        self.maxBytes = maxBytes
        self.cancellation = cancellation
    }

    /// Called by libcurl about once a second and as data moves: nonzero abandons the transfer.
    static let progress: tr_curl_progress_fn = { context, _, _, _, _ in
        let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
        return transfer.cancellation?.isCancelled == true ? 1 : 0
    }

    func digest() -> String {
        let hex = Array("0123456789abcdef".utf8)
        return String(decoding: hash.finalize().flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] }, as: UTF8.self)
    }

    /// The bytes without leading and trailing blanks (spaces, tabs, CR, LF), as text. Bytes, not
    /// Characters: Swift reads CR LF as one Character, equal to neither "\r" nor "\n".
    static func trimmed(_ bytes: UnsafeRawBufferPointer) -> String {
        let blank: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D || $0 == 0x0A }
        guard let first = bytes.firstIndex(where: { !blank($0) }), let last = bytes.lastIndex(where: { !blank($0) }) else { return "" }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[first...last]), as: UTF8.self)
    }

    /// Body bytes: written to the file unless the status says this is not the list (an error
    /// page is not kept); returning less than given makes libcurl abort.
    static let write: tr_curl_data_fn = { bytes, size, count, context in
        let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
        let total = size * count
        guard transfer.status == 200 else { return total }  // 304, 3xx and errors: their bodies are not lists
        guard transfer.written + total <= transfer.maxBytes else {
            transfer.failure = DownloadError(.oversized, "the list is larger than \(transfer.maxBytes) bytes (filters.max_download_size)")
            return 0
        }
        let buffer = UnsafeRawBufferPointer(start: bytes, count: total)
        transfer.hash.update(bufferPointer: buffer)
        var offset = 0
        while offset < total {
            do { offset += try FileCalls.write(transfer.fd, UnsafeRawBufferPointer(rebasing: buffer[offset...])) } catch {
                transfer.failure = DownloadError(.storage, "cannot write the downloaded list: \(error)")
                return 0
            }
        }
        transfer.written += total
        return total
    }

    /// Header lines, one per call: the status line starts each response (redirects have their
    /// own), so the validators are taken from the last one only.
    static let header: tr_curl_data_fn = { bytes, size, count, context in
        let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
        let total = size * count
        let line = trimmed(UnsafeRawBufferPointer(start: bytes, count: min(total, 4096)))
        if line.hasPrefix("HTTP/") {
            let parts = line.split(separator: " ", maxSplits: 2)
            transfer.status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            transfer.etag = nil
            transfer.lastModified = nil
        } else if let colon = line.firstIndex(of: ":") {
            let name = line[..<colon].lowercased()
            let value = String(line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" })
            // Stored in the cache's metadata file, one per line: bounded and printable only.
            let clean = value.utf8.count <= 512 && value.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7f }) ? value : nil
            if name == "etag" { transfer.etag = clean }
            if name == "last-modified" { transfer.lastModified = clean }
        }
        return total
    }

    /// Every socket libcurl opens gets the bypass mark, through the syscall funnel.
    static let markSocket: tr_curl_sockopt_fn = { context, fd, _ in
        let mark = UInt32(truncatingIfNeeded: UInt(bitPattern: context))
        do { try SocketOption.mark(mark).apply(to: fd) } catch { return CURL_SOCKOPT_ERROR }
        return CURL_SOCKOPT_OK
    }
}
