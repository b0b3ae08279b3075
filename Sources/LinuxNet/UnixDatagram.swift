#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import RelayCore

extension Socket {
    /// A non-blocking AF_UNIX datagram socket, unbound (for sending to a service manager).
    public static func unixDatagram() throws(Errno) -> Socket {
        try Socket(family: AF_UNIX, type: Int32(SOCK_DGRAM.rawValue))
    }

    /// Sends one datagram to the unix socket at `path`; a path that starts with `@` names an
    /// abstract socket (the `@` stands for the leading NUL, as systemd writes NOTIFY_SOCKET).
    /// nil when the receiver's queue is full.
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, toUnixPath path: String) throws(Errno) -> Int? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var name = Array(path.utf8)
        if name.first == UInt8(ascii: "@") { name[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !name.isEmpty, name.count < capacity else { throw Errno(rawValue: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: name) }
        // An abstract name is exactly its bytes; a path is NUL-terminated.
        let length = socklen_t(MemoryLayout<sa_family_t>.size + name.count + (name[0] == 0 ? 0 : 1))
        let fd = self.fd
        return try nonBlockingSyscall {
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), $0, length) }
            }
        }
    }
}
