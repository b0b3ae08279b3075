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
        let fd = self.fd
        return try Self.withUnixAddress(path) { address, length throws(Errno) in
            try nonBlockingSyscall { sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), address, length) }
        }
    }

    /// `path` as a sockaddr_un for the duration of `body`: `@name` is an abstract socket (the `@`
    /// stands for the leading NUL) and exactly its bytes; a path is NUL-terminated.
    static func withUnixAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws(Errno) -> T) throws(Errno) -> T {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var name = Array(path.utf8)
        if name.first == UInt8(ascii: "@") { name[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !name.isEmpty, name.count < capacity else { throw Errno(rawValue: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: name) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + name.count + (name[0] == 0 ? 0 : 1))
        return try withUnsafePointer(to: &address) { pointer throws(Errno) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address throws(Errno) in try body(address, length) }
        }
    }
}
