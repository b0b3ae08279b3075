#if canImport(Glibc)
import Glibc
#endif
import RelayCore

/// The file syscalls the query log makes (open, read, write, fstat, ftruncate, rename, unlink),
/// through the one funnel: EINTR retried, any other failure an `Errno`.
public enum FileCalls {
    public static func open(_ path: String, flags: Int32, mode: mode_t = 0) throws(Errno) -> Int32 {
        try syscall { Glibc.open(path, flags, mode) }
    }

    public static func close(_ fd: Int32) {
        // Not retried: after EINTR the descriptor is already released on Linux.
        _ = Glibc.close(fd)
    }

    /// Bytes read (0 at end of file).
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try syscall { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    /// Bytes written (may be short).
    public static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(Errno) -> Int {
        try syscall { Glibc.write(fd, bytes.baseAddress, bytes.count) }
    }

    /// Size and inode of an open file.
    public static func status(_ fd: Int32) throws(Errno) -> (size: Int, inode: UInt64) {
        var info = stat()
        _ = try syscall { fstat(fd, &info) }
        return (Int(info.st_size), UInt64(info.st_ino))
    }

    public static func truncate(_ fd: Int32, to length: Int) throws(Errno) {
        _ = try syscall { ftruncate(fd, off_t(length)) }
    }

    public static func rename(_ from: String, to: String) throws(Errno) {
        _ = try syscall { Glibc.rename(from, to) }
    }

    public static func unlink(_ path: String) throws(Errno) {
        _ = try syscall { Glibc.unlink(path) }
    }

    /// The inode a path names now, or nil when it names nothing.
    public static func inode(of path: String) -> UInt64? {
        var info = stat()
        guard (try? syscall({ stat(path, &info) })) != nil else { return nil }
        return UInt64(info.st_ino)
    }

    /// Flushes an open file to disk (before a rename makes it the one in service).
    public static func sync(_ fd: Int32) throws(Errno) {
        _ = try syscall { fsync(fd) }
    }

    /// Creates a directory and its missing parents (an existing directory is fine).
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(Errno) {
        var info = stat()
        if (try? syscall({ stat(path, &info) })) != nil {
            guard info.st_mode & S_IFMT == S_IFDIR else { throw Errno(rawValue: ENOTDIR) }
            return
        }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex { try makeDirectories(String(path[..<slash]), mode: mode) }
        do { _ = try syscall { mkdir(path, mode) } } catch where error == .exists {}
    }
}
