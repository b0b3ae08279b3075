#if canImport(Glibc)
import Glibc
#endif

/// Opens files the relay reads (lists, zones, the configuration) so that a path that is not a
/// regular file can never hang a thread: a FIFO, a character device or a socket at a list's path
/// would block `open` (or every `read`) forever, taking the control thread or the query log's
/// writer with it. The open itself does not block (O_NONBLOCK), the type is checked on the
/// descriptor (no race with a rename), and only then is blocking restored.
public enum RegularFile {
    /// Why a file could not be opened, in words for the user.
    public enum Failure: Error, Equatable, Sendable {
        case missing
        case notRegular(String)
        case unreadable(String)

        public var reason: String {
            switch self {
            case .missing: return "does not exist"
            case .notRegular(let kind): return "is \(kind), not a regular file"
            case .unreadable(let why): return "cannot be read (\(why))"
            }
        }
    }

    /// A read-only, close-on-exec descriptor of the regular file at `path`.
    public static func open(_ path: String) -> Result<Int32, Failure> {
        var fd: Int32
        repeat { fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY) } while fd < 0 && errno == EINTR
        guard fd >= 0 else {
            return .failure(errno == ENOENT ? .missing : .unreadable(String(cString: strerror(errno))))
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            return .failure(.unreadable(why))
        }
        let kind = info.st_mode & S_IFMT
        guard kind == S_IFREG else {
            close(fd)
            return .failure(.notRegular(Self.describe(kind)))
        }
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        return .success(fd)
    }

    /// Reads a whole file of at most `limit` bytes (a configuration, a zone file).
    public static func read(_ path: String, limit: Int = 64 << 20) -> Result<[UInt8], Failure> {
        let fd: Int32
        switch open(path) {
        case .success(let opened): fd = opened
        case .failure(let failure): return .failure(failure)
        }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(.unreadable(String(cString: strerror(errno))))
            }
            if n == 0 { return .success(out) }
            out += chunk[0..<n]
            if out.count > limit { return .failure(.unreadable("larger than \(limit >> 20) MiB")) }
        }
    }

    static func describe(_ kind: mode_t) -> String {
        switch kind {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "not a regular file"
        }
    }
}
