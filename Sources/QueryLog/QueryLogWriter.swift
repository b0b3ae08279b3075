import ClientNames
import DNS
import Glibc
import LinuxNet
import Logging
import RelayCore
import Rules
import Synchronization

/// The query log's writer thread: drains every worker's ring every 2 ms (20 ms when idle), turns
/// records into JSON lines (docs/DESIGN.md has the format), and appends them in writes of about
/// 64 KiB of complete lines to an O_APPEND file. DNS never waits for it: a full ring drops records at the worker,
/// a failing disk drops the batch here; both are counted, in the log's own status line (every
/// 10 s when something was dropped) and in the relay's log (at most once a minute).
///
/// Rotation by size: `queries.jsonl` → `.1` → `.2` …, keeping `keep` old files, then a fresh file
/// is opened; `tail` follows by name across it. A short write is cut back (ftruncate) so that the
/// file only ever holds complete lines.
package final class QueryLogWriter: @unchecked Sendable {
    package struct Settings: Equatable, Sendable {
        package var path: String
        package var rotateSize: Int = 64 << 20
        package var keep: Int = 5
        package var anonymize = false

        package init(path: String, rotateSize: Int = 64 << 20, keep: Int = 5, anonymize: Bool = false) {
            self.path = path
            self.rotateSize = rotateSize
            self.keep = keep
            self.anonymize = anonymize
        }
    }

    package let settings: Settings
    private let lists: [String]
    /// The files the lists' rule texts are read back from (a URL list's cached copy).
    private let listFiles: [String]
    private let logger: Logger
    /// Client names for the lines (`"client_name"`); nil: no name sources configured.
    private let names: ClientNameDirectory?
    private var rings: [QueryLogRing] = []
    private let stopping = Atomic<Bool>(false)
    private var thread: SystemThread?
    private var fd: Int32 = -1
    private var size = 0

    // Counters (writer thread only, but read at stop).
    package private(set) var written = 0
    private var droppedAtWriter = 0
    private var reportedDrops = 0
    private var lastStatus: UInt64 = 0
    private var lastWarning: UInt64 = 0
    /// `written` and the writer's drops as other threads may read them (/metrics), stored by the
    /// writer thread after each batch.
    private let writtenShared = Atomic<Int>(0)
    private let droppedShared = Atomic<Int>(0)

    package init(settings: Settings, lists: [String], listFiles: [String]? = nil, names: ClientNameDirectory? = nil, logger: Logger) {
        self.names = names
        self.listFiles = listFiles ?? lists
        self.settings = settings
        self.lists = lists
        self.logger = logger
    }

    /// A ring for one worker (call before `start`).
    package func makeRing(capacity: Int = 8192) -> QueryLogRing {
        let ring = QueryLogRing(capacity: capacity)
        rings.append(ring)
        return ring
    }

    /// Opens the file (creating its directory's file, not the directory) and starts the thread.
    package func start() throws {
        try open()
        do {
            thread = try SystemThread.start(name: "querylog") { self.loop() }  // top -H, perf and bench/querylog.sh find it by name
        } catch {
            throw RelayError(.invalidConfiguration, "cannot start the query log writer (pthread_create: \(error))")
        }
    }

    /// Drains what is left, writes it, and stops.
    package func stop() {
        stopping.store(true, ordering: .releasing)
        thread?.join()
        thread = nil
        if fd >= 0 { FileCalls.close(fd); fd = -1 }
    }

    private var dropped: Int { rings.reduce(0) { $0 + $1.dropped.load(ordering: .relaxed) } + droppedAtWriter }

    /// Entries written and dropped (at the workers' rings and here), readable from any thread.
    package var totals: (written: Int, dropped: Int) {
        (writtenShared.load(ordering: .relaxed),
         rings.reduce(0) { $0 + $1.dropped.load(ordering: .relaxed) } + droppedShared.load(ordering: .relaxed))
    }

    private func open() throws {
        do {
            fd = try FileCalls.open(settings.path, flags: O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode: 0o640)
        } catch {
            throw RelayError(.invalidConfiguration, "querylog.path \(settings.path): cannot be opened (\(error))")
        }
        size = (try? FileCalls.status(fd).size) ?? 0
    }

    /// Lines are written in pieces of about this size: the kernel copies them into the page cache
    /// while they are still in this core's cache (one write per batch, ~1.6 MB per 50 ms at 100k
    /// queries/s, made that copy cost as much as formatting).
    static let writeSize = 64 << 10

    /// How long the writer sleeps after a drain that found records. Short, so that each burst of
    /// formatting is short and its records are still in cache: the writer may share a core with
    /// a worker (benchmarks pin them together). Measured with the blocked scenario, log on, side
    /// by side: at 10 ms a burst of ~1,700 lines held that worker's queries (p99 1.9–2.2 ms
    /// against 0.9–1.3 ms with the log off) and cost 5.7–6.0 µs per query; at 2 ms, p99
    /// 1.2–1.5 ms and 5.3–5.4 µs (log off: 5.0). At 50 ms it had been p99 5 ms.
    static let busyInterval: UInt32 = 2_000

    /// How long it sleeps after a drain that found nothing: an idle relay wakes 50 times a
    /// second, not 500, and the first entry after a pause reaches the file within 20 ms.
    static let idleInterval: UInt32 = 20_000

    /// Records (of one ring) whose rule texts are looked up ahead of formatting them, together: a blocked-heavy
    /// load names a different rule per line, each two cache misses (index, text) that stalled
    /// the formatting one line at a time. Looked up in a tight loop, the misses overlap.
    static let lookahead = 128

    /// Where the look-ahead's loads end up, so that the compiler keeps them.
    private var touchedSink: UInt8 = 0

    private func loop() {
        // Everything the loop touches per record is local: no class-property access per append.
        var formatter = QueryLogFormatter(lists: lists, files: listFiles, anonymize: settings.anonymize)
        var touched: UInt8 = 0
        let rings = self.rings
        let names = self.names.map(ClientNameView.init)
        while true {
            let last = stopping.load(ordering: .acquiring)
            // Every ring's records, in the order they were answered: each ring is in its
            // worker's order already, so they are merged (workers answer in parallel; a reader
            // expects one timeline), formatted straight from the rings, then freed.
            let windows = rings.map { $0.waitingRecords() }
            let found = windows.contains { !$0.isEmpty }
            var lines = 0
            if found {
                formatter.ruleTexts.refresh()
                let seconds = UInt32(truncatingIfNeeded: monotonicNow() / 1_000_000_000)
                names?.refresh(now: seconds)
                formatMerged(rings, windows, into: &formatter, names: names, now: seconds, lines: &lines, touched: &touched)
                for (ring, window) in zip(rings, windows) { ring.release(upTo: window.upperBound) }
            }
            if !formatter.out.isEmpty { flush(&formatter.out, lines: lines) }
            touchedSink = touched
            let now = monotonicNow()
            let drops = dropped
            if drops != reportedDrops && now - lastStatus >= 10_000_000_000 {
                formatter.out.append("{\"time\":\"")
                formatter.appendTime(wallMicros())
                formatter.append(string: "\",\"log\":\"status\",\"written\":\(written),\"dropped\":\(drops)}\n")
                flush(&formatter.out, lines: 0)
                lastStatus = now
                reportedDrops = drops
                if now - lastWarning >= 60_000_000_000 || lastWarning == 0 {
                    logger.warning("query log: \(drops) entries dropped so far (the log could not keep up, or the disk failed); DNS is not affected")
                    lastWarning = now
                }
            }
            if last { break }
            usleep(found ? Self.busyInterval : Self.idleInterval)
        }
        formatter.deallocate()
    }

    /// Formats the records of `windows` (one per ring of `rings`) merged by answer time, and writes
    /// whenever `writeSize` bytes of complete lines are ready. The ring answered first gives a run
    /// of records, up to the time of the others' next one (usually one ring holds records, and
    /// all of its window is one run).
    @inline(__always)
    private func formatMerged(_ rings: [QueryLogRing], _ windows: [Range<Int>], into formatter: inout QueryLogFormatter,
                              names: ClientNameView?, now: UInt32, lines: inout Int, touched: inout UInt8) {
        var next = windows.map { $0.lowerBound }
        while true {
            var best = -1
            var bestTime = UInt64.max
            var otherTime = UInt64.max  // the earliest next record of the other rings
            for k in next.indices where next[k] < windows[k].upperBound {
                let time = Self.answeredAt(rings[k].record(next[k]))
                if best < 0 || time < bestTime {
                    otherTime = bestTime
                    best = k
                    bestTime = time
                } else if time < otherTime {
                    otherTime = time
                }
            }
            guard best >= 0 else { return }
            let ring = rings[best]
            var end = next[best] + 1
            if otherTime == .max {
                end = windows[best].upperBound
            } else {
                while end < windows[best].upperBound && Self.answeredAt(ring.record(end)) <= otherTime { end += 1 }
            }
            formatRun(ring, next[best]..<end, into: &formatter, names: names, now: now, lines: &lines, touched: &touched)
            next[best] = end
        }
    }

    /// Formats consecutive records of one ring, in pieces of `lookahead` whose rule texts are
    /// looked up first, together.
    @inline(__always)
    private func formatRun(_ ring: QueryLogRing, _ run: Range<Int>, into formatter: inout QueryLogFormatter,
                           names: ClientNameView?, now: UInt32, lines: inout Int, touched: inout UInt8) {
        var start = run.lowerBound
        while start < run.upperBound {
            let end = min(run.upperBound, start + Self.lookahead)
            for s in start..<end {
                let r = ring.record(s)
                touched &+= formatter.ruleTexts.touch(list: r.pointee.ruleList, line: r.pointee.ruleLine)
            }
            for s in start..<end {
                let record = ring.record(s)
                formatter.format(record.pointee, name: ring.name(s), clientName: names?.name(for: record.pointee.client.address, now: now))
                lines += 1
                if formatter.out.count >= Self.writeSize {
                    flush(&formatter.out, lines: lines)
                    lines = 0
                }
            }
            start = end
        }
    }

    /// When a record's answer went out: the order of the log.
    @inline(__always)
    private static func answeredAt(_ r: UnsafePointer<QueryLogRecord>) -> UInt64 {
        r.pointee.time &+ UInt64(r.pointee.durationMicros)
    }

    // MARK: Writing

    private func flush(_ out: inout LineBuffer, lines: Int) {
        if fd < 0 { try? open() }
        guard fd >= 0 else {
            droppedAtWriter += lines
            droppedShared.store(droppedAtWriter, ordering: .relaxed)
            out.removeAll()
            return
        }
        let before = size
        let result: Result<Int, Errno>
        do { result = .success(try FileCalls.write(fd, UnsafeRawBufferPointer(start: out.base, count: out.count))) } catch { result = .failure(error) }
        let n = (try? result.get()) ?? -1
        if n == out.count {
            size += n
            written += lines
            writtenShared.store(written, ordering: .relaxed)
        } else {
            // A full disk or an I/O error: drop the batch, and cut a partial write back so the
            // file holds complete lines only.
            if n > 0 { try? FileCalls.truncate(fd, to: before) }
            droppedAtWriter += lines
            droppedShared.store(droppedAtWriter, ordering: .relaxed)
            let now = monotonicNow()
            if now - lastWarning >= 60_000_000_000 || lastWarning == 0 {
                logger.warning("query log: write to \(settings.path) failed (\(n < 0 ? "\(result)" : "short write")); entries are dropped and counted, DNS is not affected")
                lastWarning = now
            }
        }
        out.removeAll()
        if size >= settings.rotateSize { rotate() }
    }

    /// queries.jsonl.(keep-1) → .keep, …, queries.jsonl → .1, then a new queries.jsonl.
    private func rotate() {
        let path = settings.path
        // A rotated file that is missing (deleted by hand) is not an error: the others still move.
        if settings.keep == 0 {
            try? FileCalls.unlink(path)
        } else {
            try? FileCalls.unlink("\(path).\(settings.keep)")
            if settings.keep > 1 {
                for i in stride(from: settings.keep - 1, through: 1, by: -1) { try? FileCalls.rename("\(path).\(i)", to: "\(path).\(i + 1)") }
            }
            try? FileCalls.rename(path, to: "\(path).1")
        }
        FileCalls.close(fd)
        fd = -1
        size = 0
        try? open()
    }

    private func monotonicNow() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    private func wallMicros() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
    }

    /// Records written and dropped, for the relay's counters at stop.
    package var summary: String { "query log: \(written) entries written, \(dropped) dropped" }
}
