#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import RelayCore

/// What a non-blocking read or write on a stream socket came to.
public enum StreamResult: Equatable {
    /// This many bytes moved.
    case bytes(Int)
    /// Nothing now; wait for readiness.
    case wouldBlock
    /// The peer closed (read returned 0).
    case closed
    /// The connection failed.
    case failed(Errno)
}

extension Socket {
    /// A TCP socket of the endpoint's family.
    public static func tcp(for endpoint: Endpoint) throws(Errno) -> Socket {
        try Socket(family: endpoint.family, type: Int32(SOCK_STREAM.rawValue))
    }

    public func listen(backlog: Int32) throws(Errno) {
        let fd = self.fd
        _ = try syscall { Glibc.listen(fd, backlog) }
    }

    /// Accepts one connection (non-blocking, close-on-exec); nil when none is waiting.
    public func accept() throws(Errno) -> (Socket, Endpoint)? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let fd = self.fd
        let accepted = try withUnsafeMutablePointer(to: &storage) { pointer throws(Errno) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address throws(Errno) in
                try nonBlockingSyscall { tr_accept4(fd, address, &length, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)) }
            }
        }
        guard let accepted else { return nil }
        let socket = Socket(adopting: accepted, family: Int32(storage.ss_family))
        guard let peer = withUnsafeBytes(of: storage, { Endpoint(sockaddr: $0.baseAddress!, length: length) }) else {
            return nil
        }
        return (socket, peer)
    }

    /// Starts a non-blocking connect; completion shows as writability (check `pendingError()`).
    public func startConnect(to endpoint: Endpoint) throws(Errno) {
        let fd = self.fd
        let result = endpoint.withSockAddr { address, length in Glibc.connect(fd, address, length) }
        if result != 0 && errno != EINPROGRESS { throw Errno.current }
    }

    /// Closes with a reset (SO_LINGER 0): queued data is discarded at once instead of waiting,
    /// maybe forever, for a peer that does not read.
    public func abort() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close()
    }

    /// SO_ERROR: the outcome of a non-blocking connect.
    public func pendingError() -> Errno? {
        let value = (try? integerOption(level: SOL_SOCKET, name: SO_ERROR)) ?? EIO
        return value == 0 ? nil : Errno(rawValue: value)
    }

    @inline(__always)
    public func read(into buffer: UnsafeMutableRawBufferPointer) -> StreamResult {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n > 0 { return .bytes(n) }
            if n == 0 { return .closed }
            let error = Errno.current
            if error == .interrupted { continue }
            if error.rawValue == EAGAIN { return .wouldBlock }
            return .failed(error)
        }
    }

    @inline(__always)
    public func write(_ bytes: UnsafeRawBufferPointer) -> StreamResult {
        while true {
            let n = Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
            if n >= 0 { return .bytes(n) }
            let error = Errno.current
            if error == .interrupted { continue }
            if error.rawValue == EAGAIN { return .wouldBlock }
            return .failed(error)
        }
    }
}
