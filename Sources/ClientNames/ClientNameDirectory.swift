import RelayCore
import Synchronization

/// Where client names meet the threads that use them. The names thread (Relay's
/// ClientNameService) publishes the files' table and the reverse lookups' results here; the
/// query log's writer takes the table when its version changes (one atomic load per batch), asks
/// for reverse lookups of addresses no file names, and takes their results once per batch. The
/// writer keeps its own view (`ClientNameView`), so no lock is taken per log line.
public final class ClientNameDirectory: Sendable {
    /// A reverse lookup's outcome: the name, or none, and until when it holds (monotonic seconds).
    public struct LookupResult: Sendable, Equatable {
        public var address: IPAddress
        public var name: String?
        public var expires: UInt32

        public init(address: IPAddress, name: String?, expires: UInt32) {
            self.address = address
            self.name = name
            self.expires = expires
        }
    }

    /// Reverse lookups waiting to be sent, at most this many (asks beyond are dropped; the
    /// writer asks again later): a flood of new clients costs bounded memory and a bounded rate.
    public static let maxWaiting = 256
    public static let maxResults = 1024

    /// Whether reverse lookups are configured (the writer asks only then).
    public let reverseLookups: Bool
    private let tableState = Mutex<ClientNameTable>(.empty)
    private let tableVersion = Atomic<Int>(0)
    private let waiting = Mutex<[IPAddress]>([])
    private let results = Mutex<[LookupResult]>([])
    private let dropped = Atomic<Int>(0)
    /// Called when a lookup is asked for (wakes the names thread).
    private let wake: @Sendable () -> Void

    public init(reverseLookups: Bool, wake: @escaping @Sendable () -> Void = {}) {
        self.reverseLookups = reverseLookups
        self.wake = wake
    }

    // MARK: The names thread's side

    public func publish(_ table: ClientNameTable) {
        tableState.withLock { $0 = table }
        tableVersion.add(1, ordering: .releasing)
    }

    /// The addresses waiting for a lookup, at most `limit`, oldest first.
    public func takeWaiting(limit: Int) -> [IPAddress] {
        waiting.withLock { queue in
            let taken = Array(queue.prefix(limit))
            queue.removeFirst(taken.count)
            return taken
        }
    }

    public func deliver(_ result: LookupResult) {
        results.withLock { list in
            if list.count >= Self.maxResults { list.removeFirst() }
            list.append(result)
        }
    }

    /// Asks dropped because the queue was full.
    public var droppedAsks: Int { dropped.load(ordering: .relaxed) }

    // MARK: The writer's side

    public var version: Int { tableVersion.load(ordering: .acquiring) }
    public var table: ClientNameTable { tableState.withLock { $0 } }

    /// Asks for a reverse lookup of `address`; false when the queue is full.
    @discardableResult
    public func ask(_ address: IPAddress) -> Bool {
        let queued = waiting.withLock { queue -> Bool in
            guard queue.count < Self.maxWaiting else { return false }
            queue.append(address)
            return true
        }
        if queued { wake() } else { dropped.add(1, ordering: .relaxed) }
        return queued
    }

    public func takeResults() -> [LookupResult] {
        results.withLock { list in
            defer { list.removeAll(keepingCapacity: true) }
            return list
        }
    }
}
