#if canImport(Glibc)
import Glibc
#endif
import RelayCore

/// One of the relay's long-lived threads (a worker, the query log's writer, the list watcher): a
/// pthread that names itself, so that `top -H`, perf and /proc tell them apart, and runs `body`
/// once. Not for work per query: threads are made at start and joined at stop.
public struct SystemThread: Sendable {
    public let handle: pthread_t

    /// Starts `body` on a new thread called `name` (at most 15 bytes are kept). Throws
    /// pthread_create's error.
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) throws(Errno) -> SystemThread {
        let box = Unmanaged.passRetained(Start(name: name, body: body))
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { argument in
            let start = Unmanaged<Start>.fromOpaque(argument!).takeRetainedValue()
            SystemInfo.nameThisThread(start.name)
            start.body()
            return nil
        }, box.toOpaque())
        guard result == 0 else {
            box.release()
            throw Errno(rawValue: result)
        }
        return SystemThread(handle: thread)
    }

    /// Waits for the thread to return.
    public func join() {
        pthread_join(handle, nil)
    }

    private final class Start {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }
}
