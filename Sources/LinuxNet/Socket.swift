#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import RelayCore

/// A non-blocking socket that owns its descriptor and closes it when released.
public final class Socket {
    /// The descriptor; valid until `close()` or deinit.
    public private(set) var fd: Int32
    /// AF_INET or AF_INET6.
    public let family: Int32

    /// Opens a non-blocking, close-on-exec socket.
    public init(family: Int32, type: Int32) throws(Errno) {
        self.family = family
        self.fd = try syscall { Glibc.socket(family, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
    }

    /// Takes ownership of a descriptor made elsewhere (accept4).
    init(adopting fd: Int32, family: Int32) {
        self.fd = fd
        self.family = family
    }

    /// A UDP socket of the endpoint's family.
    public static func udp(for endpoint: Endpoint) throws(Errno) -> Socket {
        try Socket(family: endpoint.family, type: Int32(SOCK_DGRAM.rawValue))
    }

    deinit { close() }

    /// Closes the descriptor (idempotent).
    public func close() {
        if fd >= 0 {
            _ = Glibc.close(fd)
            fd = -1
        }
    }

    public func set(_ option: SocketOption) throws(Errno) {
        let (level, name, value) = option.parameters(family: family)
        var v = value
        _ = try syscall { setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) }
    }

    public func set(_ options: [SocketOption]) throws(Errno) {
        for option in options { try set(option) }
    }

    /// Reads an integer socket option (SO_RCVBUF, say).
    public func integerOption(level: Int32, name: Int32) throws(Errno) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = try syscall { getsockopt(fd, level, name, &value, &length) }
        return value
    }

    public func bind(to endpoint: Endpoint) throws(Errno) {
        let fd = self.fd
        _ = try syscall { endpoint.withSockAddr { address, length in Glibc.bind(fd, address, length) } }
    }

    /// Connects (a datagram socket: fixes its peer). A stream socket uses `startConnect`.
    public func connect(to endpoint: Endpoint) throws(Errno) {
        let fd = self.fd
        _ = try syscall { endpoint.withSockAddr { address, length in Glibc.connect(fd, address, length) } }
    }

    /// The address the socket is bound to (getsockname).
    public func localEndpoint() throws(Errno) -> Endpoint {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let fd = self.fd
        _ = try withUnsafeMutablePointer(to: &storage) { pointer throws(Errno) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address throws(Errno) in
                try syscall { getsockname(fd, address, &length) }
            }
        }
        guard let endpoint = withUnsafeBytes(of: storage, { Endpoint(sockaddr: $0.baseAddress!, length: length) })
        else { throw Errno(rawValue: EAFNOSUPPORT) }
        return endpoint
    }

    /// Sends one datagram; nil when the socket buffer is full.
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, to endpoint: Endpoint) throws(Errno) -> Int? {
        let fd = self.fd
        return try nonBlockingSyscall {
            endpoint.withSockAddr { address, length in sendto(fd, bytes.baseAddress, bytes.count, 0, address, length) }
        }
    }

    /// Sends one datagram on a connected socket without blocking; nil when the socket buffer is full.
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer) throws(Errno) -> Int? {
        let fd = self.fd
        return try nonBlockingSyscall { Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT)) }
    }

    /// Receives one datagram on a connected socket without blocking; nil when none is waiting.
    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int? {
        let fd = self.fd
        return try nonBlockingSyscall { Glibc.recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT)) }
    }

    /// Waits until a datagram is waiting or `milliseconds` pass (poll); true when one is.
    public func waitReadable(milliseconds: Int32) throws(Errno) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return try syscall { poll(&entry, 1, milliseconds) } > 0
    }
}
