#if canImport(Glibc)
import Glibc
#endif
import RelayCore

/// An inotify instance (non-blocking, close-on-exec); every call through the one syscall funnel.
public final class Inotify {
    public private(set) var fd: Int32

    public init() throws(Errno) {
        fd = try syscall { inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK)) }
    }

    deinit { close() }

    /// Watches `path` for the events in `mask`; the watch descriptor events carry.
    public func addWatch(_ path: String, mask: UInt32) throws(Errno) -> Int32 {
        let fd = self.fd
        return try syscall { inotify_add_watch(fd, path, mask) }
    }

    /// Waits up to `timeoutMilliseconds` for events; true when some are ready.
    @discardableResult
    public func wait(timeoutMilliseconds: Int32) throws(Errno) -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return try syscall { poll(&descriptor, 1, timeoutMilliseconds) } > 0
    }

    /// Reads queued events into `buffer`; nil when none are queued.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int? {
        let fd = self.fd
        return try nonBlockingSyscall { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    public func close() {
        if fd >= 0 {
            FileCalls.close(fd)
            fd = -1
        }
    }
}
