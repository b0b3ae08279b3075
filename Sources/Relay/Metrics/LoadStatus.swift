import Synchronization

/// When each list and zone file was last read and how that went, for /metrics: written by the
/// thread that loads (start-up, SIGHUP, the watcher), read by the metrics thread.
final class LoadStatus: Sendable {
    struct Entry: Sendable, Equatable {
        /// Rules (lists) or records (zones) in service from this file.
        var size = 0
        /// Whether the last attempt to read it worked (a failed one leaves the previous copy in service).
        var succeeded = false
        /// When it was last read successfully (Unix seconds; 0: never).
        var lastSuccess: Double = 0
    }

    /// Downloads of one URL list (`filters.lists` URLs), by outcome.
    struct Downloads: Sendable, Equatable {
        var updated = 0
        var unchanged = 0
        /// Failed downloads (network, status, size, content, storage) and updates whose rules
        /// would not load: each keeps the copy in service.
        var failed = 0
        /// When a download last worked (Unix seconds; 0: never in this run).
        var lastSuccess: Double = 0
        var lastError: String?
    }

    private let state = Mutex<(lists: [String: Entry], zones: [String: Entry])>(([:], [:]))
    private let downloadState = Mutex<[String: Downloads]>([:])

    func download(_ url: String, _ record: (inout Downloads) -> Void) {
        downloadState.withLock { record(&$0[url, default: Downloads()]) }
    }

    var downloads: [(String, Downloads)] { downloadState.withLock { $0.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } } }

    func listLoaded(_ path: String, rules: Int, at time: Double) {
        state.withLock { $0.lists[path] = Entry(size: rules, succeeded: true, lastSuccess: time) }
    }

    func listFailed(_ path: String) {
        state.withLock { $0.lists[path, default: Entry()].succeeded = false }
    }

    /// The zones in service after a load, and the files that failed in it.
    func zonesLoaded(_ served: [(file: String, records: Int)], failed: [String], at time: Double) {
        state.withLock { state in
            for zone in served where !failed.contains(zone.file) {
                state.zones[zone.file] = Entry(size: zone.records, succeeded: true, lastSuccess: time)
            }
            for file in failed { state.zones[file, default: Entry()].succeeded = false }
        }
    }

    var lists: [(String, Entry)] { state.withLock { $0.lists.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } } }
    var zones: [(String, Entry)] { state.withLock { $0.zones.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } } }
}
