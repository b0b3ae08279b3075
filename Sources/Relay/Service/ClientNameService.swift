import ClientNames
import Configuration
import DNS
import Glibc
import LinuxNet
import Logging
import RelayCore
import Rules
import Synchronization

/// `clients.names`: reads the hosts and lease files (again within a second of a change), asks
/// the configured resolver for PTR names of clients no file names, and publishes both through a
/// `ClientNameDirectory` for the query log. Runs on its own thread, never a worker's.
///
/// `filters.clients` entries that match by name are resolved here, from the files' names, into
/// addresses: a new `ClientPolicy` goes to every worker through its mailbox when a file changes
/// (the datapath keeps matching prefixes, and pays nothing for names). Reverse-lookup names are
/// shown, not used for policy: a policy must not depend on whether a client's first query was
/// logged yet, or on a resolver's answer.
///
/// Reverse lookups: at most `ptr_qps` a second, each with a 2 s deadline, through a UDP socket
/// carrying the bypass mark (this host's own DNS capture leaves it alone); the writer's view
/// remembers answers for their TTL (at most `ptr_ttl`) and "no name" for `ptr_negative_ttl`.
final class ClientNameService: @unchecked Sendable {
    let directory: ClientNameDirectory
    private let sources: Configuration.NameSources
    /// `filters` of the configuration: its `clients` and `lists` make the policy.
    private let filters: Configuration.Filters
    private let bypassMark: UInt32
    private let logger: Logger
    private let stopping = Atomic<Bool>(false)
    private var thread: SystemThread?
    private var workers: [Worker] = []
    /// Each file as last read (nil: missing).
    private var seen: [String: FileStamp?] = [:]
    private struct FileStamp: Equatable { var inode: UInt64, size: Int, mtime: Int }
    private(set) var table = ClientNameTable.empty
    private var socket: Socket?
    private var outstanding: [UInt16: (address: IPAddress, sent: UInt64)] = [:]
    private let random = RandomSource()
    private var tokens: Double
    private var lastRefill: UInt64 = 0
    /// Totals for /metrics.
    let lookups = Mutex<(sent: Int, named: Int, unnamed: Int, failed: Int)>((0, 0, 0, 0))
    /// The files' table as last published, for /metrics (read from the metrics thread).
    private let published = Mutex<ClientNameTable>(.empty)

    struct Metrics {
        var named: [(String, Int)]
        var sent: Int, named_: Int, unnamed: Int, failed: Int, dropped: Int
    }

    /// The files' table as last published, from any thread (the dashboard's explain).
    var publishedTable: ClientNameTable { published.withLock { $0 } }

    var metrics: Metrics {
        let table = publishedTable
        let l = lookups.withLock { $0 }
        return Metrics(named: [("hosts", table.count(from: .hosts)), ("leases", table.count(from: .leases))],
                       sent: l.sent, named_: l.named, unnamed: l.unnamed, failed: l.failed, dropped: directory.droppedAsks)
    }

    init(configuration: Configuration, logger: Logger) {
        sources = configuration.clients.names
        filters = configuration.filters
        bypassMark = configuration.intercept.bypassMark
        self.logger = logger
        directory = ClientNameDirectory(reverseLookups: configuration.clients.names.ptr != nil)
        tokens = Double(configuration.clients.names.ptrQueriesPerSecond)
    }

    /// Reads the files once (before the workers start, so that their first policy has the
    /// names) and opens the lookup socket.
    func load() throws {
        _ = readFilesIfChanged(force: true)
        if let ptr = sources.ptr {
            let socket = try Socket.udp(for: ptr)
            do {
                try socket.set(.mark(bypassMark))
                try socket.connect(to: ptr)
            } catch {
                throw RelayError(.socket, "clients.names.ptr \(ptr): \(error)")
            }
            self.socket = socket
        }
    }

    /// The policy of `filters.clients` with names resolved by the current table.
    var policy: ClientPolicy { filters.clientPolicy(names: table) }

    private var usesNames: Bool { filters.clients.contains { !$0.names.isEmpty } }

    func start(workers: [Worker]) throws(Errno) {
        self.workers = workers
        thread = try SystemThread.start(name: "client-names") { [self] in run() }
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        thread?.join()
        thread = nil
        socket = nil
    }

    private func run() {
        var lastFileCheck = SystemInfo.monotonicNanoseconds()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !stopping.load(ordering: .relaxed) {
            if let socket {
                _ = try? socket.waitReadable(milliseconds: 100)
                buffer.withUnsafeMutableBytes { receive(on: socket, into: $0) }
                send(on: socket)
                expireOutstanding()
            } else {
                usleep(100_000)
            }
            let now = SystemInfo.monotonicNanoseconds()
            if now - lastFileCheck >= 1_000_000_000 {
                lastFileCheck = now
                if readFilesIfChanged(force: false), usesNames {
                    let policy = self.policy
                    for worker in workers { worker.install(policy) }
                    logger.info("client names changed: filters.clients by name now covers \(policy.entries.count) addresses and prefixes")
                }
            }
        }
    }

    // MARK: Files

    /// Reads every file again when any changed; true when the table changed.
    private func readFilesIfChanged(force: Bool) -> Bool {
        var changed = force
        for path in sources.hosts + sources.leases {
            let now = Self.stamp(of: path)
            if seen[path] != .some(now) { changed = true }
            seen[path] = .some(now)
        }
        guard changed else { return false }
        let reading = ClientNameFiles.read(hosts: sources.hosts, leases: sources.leases)
        for (path, problems) in reading.problems {
            for problem in problems.prefix(20) { logger.warning("client names: \(problem)") }
            if problems.count > 20 { logger.warning("client names: \(path): \(problems.count - 20) more lines not used") }
        }
        for (path, reason) in reading.unreadable {
            logger.warning("client names: \(path) \(reason); no names from it until it can be read")
        }
        let fresh = reading.table
        table = fresh
        published.withLock { $0 = fresh }
        directory.publish(fresh)
        logger.info("client names: \(fresh.count(from: .hosts)) from hosts files, \(fresh.count(from: .leases)) from lease files")
        return true
    }

    private static func stamp(of path: String) -> FileStamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileStamp(inode: UInt64(info.st_ino), size: Int(info.st_size), mtime: Int(info.st_mtim.tv_sec) &* 1_000_000_000 &+ Int(info.st_mtim.tv_nsec))
    }

    // MARK: Reverse lookups

    static let deadline: UInt64 = 2_000_000_000

    private func send(on socket: Socket) {
        let now = SystemInfo.monotonicNanoseconds()
        let rate = Double(sources.ptrQueriesPerSecond)
        tokens = min(rate, tokens + Double(now &- lastRefill) / 1e9 * rate)
        lastRefill = now
        let budget = min(Int(tokens), 64 - outstanding.count)
        guard budget > 0 else { return }
        for address in directory.takeWaiting(limit: budget) {
            var id = random.next16()
            while outstanding[id] != nil { id = random.next16() }
            guard let query = QueryBuilder.query(name: ReverseName.queryName(for: address), type: 12, id: id) else { continue }
            let sent = query.withUnsafeBytes { (try? socket.send($0)) ?? nil }
            tokens -= 1
            if sent != nil {
                outstanding[id] = (address, now)
                lookups.withLock { $0.sent += 1 }
            } else {
                deliver(address, name: nil, ttl: 60)
                lookups.withLock { $0.failed += 1 }
            }
        }
    }

    private func receive(on socket: Socket, into buffer: UnsafeMutableRawBufferPointer) {
        while let count = (try? socket.receive(into: buffer)) ?? nil, count > 0 {
            let message = UnsafeRawBufferPointer(rebasing: buffer[..<count])
            guard count >= DNSHeader.size, let base = message.baseAddress,
                  let pending = outstanding.removeValue(forKey: DNSHeader.id(base)) else { continue }
            switch ReverseName.answer(message, id: DNSHeader.id(base)) {
            case .name(let raw, let ttl):
                let name = ClientNameText.normalize(raw)
                deliver(pending.address, name: name, ttl: min(Int(ttl), sources.ptrTTL))
                lookups.withLock { name != nil ? ($0.named += 1) : ($0.unnamed += 1) }
            case .none(let ttl):
                deliver(pending.address, name: nil, ttl: min(max(Int(ttl), 60), sources.ptrNegativeTTL))
                lookups.withLock { $0.unnamed += 1 }
            case .failure:
                deliver(pending.address, name: nil, ttl: 60)
                lookups.withLock { $0.failed += 1 }
            }
        }
    }

    private func expireOutstanding() {
        let now = SystemInfo.monotonicNanoseconds()
        for (id, pending) in outstanding where now &- pending.sent > Self.deadline {
            outstanding.removeValue(forKey: id)
            deliver(pending.address, name: nil, ttl: 60)
            lookups.withLock { $0.failed += 1 }
        }
    }

    private func deliver(_ address: IPAddress, name: String?, ttl: Int) {
        let now = UInt32(truncatingIfNeeded: SystemInfo.monotonicNanoseconds() / 1_000_000_000)
        directory.deliver(.init(address: address, name: name, expires: now &+ UInt32(max(ttl, 1))))
    }
}
