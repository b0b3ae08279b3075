#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import RelayCore

extension Socket {
    /// A non-blocking AF_UNIX stream socket (a dnstap collector's socket).
    public static func unixStream() throws(Errno) -> Socket {
        try Socket(family: AF_UNIX, type: Int32(SOCK_STREAM.rawValue))
    }

    /// Starts connecting to the unix socket at `path` (`@name`: abstract); completion shows as
    /// writability, as for TCP (`pendingError()`).
    public func startConnect(toUnixPath path: String) throws(Errno) {
        let fd = self.fd
        let result = try Self.withUnixAddress(path) { address, length in Glibc.connect(fd, address, length) }
        if result != 0 && errno != EINPROGRESS && errno != EAGAIN { throw Errno.current }
    }

    /// Waits up to `milliseconds` for the socket to be readable (or writable); false on timeout.
    /// For the few threads that may block (the dnstap writer), never for a worker.
    public func wait(writable: Bool, milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(writable ? POLLOUT : POLLIN), revents: 0)
        while true {
            let n = poll(&entry, 1, milliseconds)
            if n < 0 && errno == EINTR { continue }
            return n > 0
        }
    }
}
