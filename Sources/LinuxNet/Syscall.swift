#if canImport(Glibc)
import Glibc
#endif
import RelayCore

/// Every syscall in LinuxNet goes through these two functions, so there is one EINTR and error
/// policy (as swift-nio's `System.swift` and swift-system's `Syscalls.swift` do it):
/// EINTR is retried, any other failure becomes an `Errno`.
@inline(__always)
func syscall<T: FixedWidthInteger>(_ body: () -> T) throws(Errno) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let error = Errno.current
        if error == .interrupted { continue }
        throw error
    }
}

/// Like `syscall`, but a non-blocking call that would block returns nil instead of throwing.
@inline(__always)
func nonBlockingSyscall<T: FixedWidthInteger>(_ body: () -> T) throws(Errno) -> T? {
    while true {
        let result = body()
        if result != -1 { return result }
        let error = Errno.current
        if error == .interrupted { continue }
        if error.rawValue == EAGAIN || error.rawValue == EWOULDBLOCK { return nil }
        throw error
    }
}
