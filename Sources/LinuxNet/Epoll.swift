#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import RelayCore

/// A level-triggered epoll set whose events carry a caller-chosen 64-bit token.
public final class Epoll {
    public let fd: Int32
    private let events: UnsafeMutablePointer<epoll_event>
    public let capacity: Int

    public init(capacity: Int = 64) throws(Errno) {
        self.capacity = capacity
        fd = try syscall { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        events = .allocate(capacity: capacity)
    }

    deinit {
        _ = Glibc.close(fd)
        events.deallocate()
    }

    /// Readiness a caller asks for and gets back.
    public struct Events: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let readable = Events(rawValue: EPOLLIN.rawValue)
        public static let writable = Events(rawValue: EPOLLOUT.rawValue)
        /// Error or hang-up (always reported).
        public static let closed = Events(rawValue: EPOLLERR.rawValue | EPOLLHUP.rawValue)
    }

    /// Watches `target`; `token` comes back with its events.
    public func add(_ target: Int32, token: UInt64, events: Events = .readable) throws(Errno) {
        var event = epoll_event()
        event.events = events.rawValue
        event.data.u64 = token
        _ = try syscall { epoll_ctl(fd, EPOLL_CTL_ADD, target, &event) }
    }

    /// Changes what `target` is watched for.
    public func modify(_ target: Int32, token: UInt64, events: Events) {
        var event = epoll_event()
        event.events = events.rawValue
        event.data.u64 = token
        _ = epoll_ctl(fd, EPOLL_CTL_MOD, target, &event)
    }

    public func remove(_ target: Int32) {
        var event = epoll_event()
        _ = epoll_ctl(fd, EPOLL_CTL_DEL, target, &event)
    }

    /// Waits up to `timeoutMilliseconds` (-1: forever) and hands the token and events of each
    /// ready descriptor to `body`; returns how many there were.
    @inline(__always)
    public func wait(timeoutMilliseconds: Int32, _ body: (UInt64, Events) -> Void) throws(Errno) -> Int {
        let n = epoll_wait(fd, events, Int32(capacity), timeoutMilliseconds)
        if n < 0 {
            if errno == EINTR { return 0 }
            throw Errno.current
        }
        for i in 0..<Int(n) { body(events[i].data.u64, Events(rawValue: events[i].events)) }
        return Int(n)
    }
}

/// An eventfd used to wake a thread that sleeps in epoll.
public final class EventNotifier {
    public let fd: Int32

    public init() throws(Errno) {
        fd = try syscall { eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC)) }
    }

    deinit { _ = Glibc.close(fd) }

    public func notify() {
        var one: UInt64 = 1
        _ = Glibc.write(fd, &one, 8)
    }

    /// Clears pending notifications.
    public func drain() {
        var value: UInt64 = 0
        _ = Glibc.read(fd, &value, 8)
    }
}
