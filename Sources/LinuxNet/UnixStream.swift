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
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var name = Array(path.utf8)
        if name.first == UInt8(ascii: "@") { name[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !name.isEmpty, name.count < capacity else { throw Errno(rawValue: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: name) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + name.count + (name[0] == 0 ? 0 : 1))
        let fd = self.fd
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) }
        }
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
