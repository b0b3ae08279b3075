import Foundation
import QueryLog

/// The Overview page's figures. Queries and blocked per minute over the last 24 hours: read once
/// from the query log files, newest first (4 MiB per turn of the web thread, so that a long log
/// never stalls it; 32 MiB at most), then from the relay's own counters, sampled every turn. The top lists (names,
/// blocked names, clients, the servers clients addressed, QUIC names) come from the most recent
/// `recentBytes` of the log, read again at most every `refreshSeconds`: on a busy relay that is
/// the last few minutes, on a quiet one most of a day; the page says how many entries they cover.
/// Everything is read from the lines' bytes (`RawLogFields`), never parsed as JSON.
final class OverviewTracker {
    struct Minute: Equatable {
        var start: Int
        var queries: Int
        var blocked: Int
    }

    static let minutes = 24 * 60
    /// Per minute of the last 24 hours, by `start / 60 % minutes`.
    private var series: [Minute]
    private let logPath: String?
    /// The log files still to read for the past (newest first) and where in the current one.
    private var backfill: [String] = []
    private var backfillOffset = 0
    private var backfillEnd = Int.max
    /// The newest minute seen in the file being read (a file that ends over a day ago ends the backfill).
    private var lastMinuteInFile = 0
    /// Bytes of old log read at most for the chart (a busy relay's 24 hours can be gigabytes;
    /// this is about 90,000 entries: a day of a household, minutes of a busy relay).
    let backfillBudget: Int
    private var backfillRead = 0
    /// The counters last sampled (nil until the first sample).
    private var lastCounts: (queries: Int, blocked: Int)?
    private var top: TopLists?
    private var topRead: Double = 0
    let recentBytes: Int
    let refreshSeconds: Double

    init(logPath: String?, recentBytes: Int = 16 << 20, refreshSeconds: Double = 30, backfillBudget: Int = 32 << 20) {
        self.logPath = logPath
        self.backfillBudget = backfillBudget
        self.recentBytes = recentBytes
        self.refreshSeconds = refreshSeconds
        series = Array(repeating: Minute(start: 0, queries: 0, blocked: 0), count: Self.minutes)
        if let logPath {
            // The live file up to its size now (the counters take over from there), then the
            // rotated ones, newest first, until a file ends more than a day ago or
            // `backfillBudget` bytes have been read.
            backfill = QueryLogFiles.files(logPath).reversed().filter { FileManager.default.fileExists(atPath: $0) }
            backfillEnd = (try? FileManager.default.attributesOfItem(atPath: logPath)[.size] as? Int) ?? 0
        }
    }

    /// One turn of the web thread: a slice of the backfill, then the counters' growth since the
    /// last turn into the current minute.
    func turn(now: Double, queries: Int, blocked: Int) {
        readBackfill(budget: 4 << 20, now: now)
        if let last = lastCounts {
            // A counter that went down (a restart of a worker's count) adds nothing.
            add(minute: Int(now) / 60 * 60, queries: max(0, queries - last.queries), blocked: max(0, blocked - last.blocked), now: now)
        }
        lastCounts = (queries, blocked)
    }

    /// The last 24 hours, oldest minute first, minutes without traffic as zeros.
    func perMinute(now: Double) -> [Minute] {
        let current = Int(now) / 60 * 60
        return (0..<Self.minutes).reversed().map { back in
            let start = current - back * 60
            let slot = series[(start / 60) % Self.minutes]
            return slot.start == start ? slot : Minute(start: start, queries: 0, blocked: 0)
        }
    }

    var backfilling: Bool { !backfill.isEmpty }

    /// Bytes of old log read for the chart so far.
    var backfilledBytes: Int { backfillRead }

    private func add(minute start: Int, queries: Int, blocked: Int, now: Double) {
        guard start > Int(now) - Self.minutes * 60, start <= Int(now) + 60 else { return }
        let slot = (start / 60) % Self.minutes
        if series[slot].start != start { series[slot] = Minute(start: start, queries: 0, blocked: 0) }
        series[slot].queries += queries
        series[slot].blocked += blocked
    }

    private func readBackfill(budget: Int, now: Double) {
        var left = budget
        while left > 0, let file = backfill.first {
            guard backfillRead < backfillBudget else {
                backfill.removeAll()
                return
            }
            let isLive = file == logPath
            guard let handle = FileHandle(forReadingAtPath: file) else {
                nextBackfillFile(now: now)
                continue
            }
            defer { try? handle.close() }
            try? handle.seek(toOffset: UInt64(backfillOffset))
            let want = isLive ? min(left, max(0, backfillEnd - backfillOffset)) : left
            let bytes = want > 0 ? [UInt8]((try? handle.read(upToCount: want)) ?? Data()) : []
            // Whole lines only: the rest is read again next turn.
            let usable = bytes.lastIndex(of: 0x0a).map { $0 + 1 } ?? 0
            var start = 0
            bytes.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return }
                while start < usable, let newline = memchr(base + start, 0x0a, usable - start) {
                    let end = UnsafeRawPointer(newline) - base
                    count(bytes[start..<end], now: now)
                    start = end + 1
                }
            }
            backfillOffset += usable
            backfillRead += usable
            left -= max(usable, 1)
            if bytes.count < want || want == 0 || (isLive && backfillOffset >= backfillEnd) {
                nextBackfillFile(now: now)
            } else if usable == 0 {
                backfillOffset += bytes.count  // a "line" longer than a whole turn's budget: not a log line
            }
        }
    }

    /// The current file is done: the next (older) one, unless this one ended over a day ago.
    private func nextBackfillFile(now: Double) {
        backfill.removeFirst()
        backfillOffset = 0
        if lastMinuteInFile != 0 && lastMinuteInFile <= Int(now) - Self.minutes * 60 { backfill.removeAll() }
        lastMinuteInFile = 0
    }

    private func count(_ line: ArraySlice<UInt8>, now: Double) {
        guard let time = RawLogFields.string(line, RawLogFields.time), let minute = RawLogFields.minute(time),
              let action = RawLogFields.string(line, RawLogFields.action) else { return }
        lastMinuteInFile = max(lastMinuteInFile, minute)
        // A QUIC flow's end line repeats its decision: counted once, at the decision.
        if RawLogFields.string(line, RawLogFields.event).map({ $0.elementsEqual("end".utf8) }) == true { return }
        add(minute: minute, queries: 1, blocked: action.elementsEqual("blocked".utf8) ? 1 : 0, now: now)
    }

    // MARK: Top lists

    struct TopLists {
        var entries = 0
        var since: String?
        var domains: [(String, Int)] = []
        var blocked: [(String, Int)] = []
        var clients: [(String, Int)] = []
        var servers: [(server: String, queries: Int, clients: Int)] = []
        var quic: [(String, Int)] = []
    }

    /// The top lists, read again when older than `refreshSeconds`.
    func topLists(now: Double, count n: Int = 10) -> TopLists {
        if let top, now - topRead < refreshSeconds { return top }
        let fresh = readTop(n)
        top = fresh
        topRead = now
        return fresh
    }

    private func readTop(_ n: Int) -> TopLists {
        guard let logPath else { return TopLists() }
        // The newest `recentBytes`: the live file's tail, then the rotated files' tails, newest first.
        var chunks: [(bytes: [UInt8], partial: Bool)] = []
        var left = recentBytes
        for file in QueryLogFiles.files(logPath).reversed() where left > 0 {
            guard let handle = FileHandle(forReadingAtPath: file) else { continue }
            defer { try? handle.close() }
            let size = (try? handle.seekToEnd()) ?? 0
            let from = size > UInt64(left) ? size - UInt64(left) : 0
            try? handle.seek(toOffset: from)
            let bytes = [UInt8]((try? handle.readToEnd()) ?? Data())
            left -= bytes.count
            chunks.append((bytes, from > 0))
        }
        var result = TopLists()
        var domains: [ArraySlice<UInt8>: Int] = [:], blocked: [ArraySlice<UInt8>: Int] = [:], clients: [ArraySlice<UInt8>: Int] = [:]
        var quic: [ArraySlice<UInt8>: Int] = [:]
        var servers: [ArraySlice<UInt8>: (queries: Int, clients: Set<ArraySlice<UInt8>>)] = [:]
        /// Client address → its latest name in the log (`clients.names`).
        var names: [ArraySlice<UInt8>: ArraySlice<UInt8>] = [:]
        for (bytes, partial) in chunks.reversed() {
            var start = 0
            // A file's tail starts inside a line: that line is left out.
            if partial, let first = bytes.firstIndex(of: 0x0a) { start = first + 1 }
            var i = start
            while let newline = bytes[i...].firstIndex(of: 0x0a) {
                let line = bytes[start..<newline]
                start = newline + 1
                i = start
                guard let action = RawLogFields.string(line, RawLogFields.action) else { continue }
                if RawLogFields.string(line, RawLogFields.event).map({ $0.elementsEqual("end".utf8) }) == true { continue }
                result.entries += 1
                if result.since == nil, let time = RawLogFields.string(line, RawLogFields.time) { result.since = String(decoding: time, as: UTF8.self) }
                let client = RawLogFields.string(line, RawLogFields.client).map(RawLogFields.address)
                if let client {
                    clients[client, default: 0] += 1
                    if let name = RawLogFields.string(line, RawLogFields.clientName) { names[client] = name }
                }
                if let server = RawLogFields.string(line, RawLogFields.server).map(RawLogFields.address) {
                    var entry = servers[server] ?? (0, [])
                    entry.queries += 1
                    if let client, entry.clients.count < 10_000 { entry.clients.insert(client) }
                    servers[server] = entry
                }
                if let name = RawLogFields.string(line, RawLogFields.qname) {
                    domains[name, default: 0] += 1
                    if action.elementsEqual("blocked".utf8) { blocked[name, default: 0] += 1 }
                } else if let sni = RawLogFields.string(line, RawLogFields.sni) {
                    quic[sni, default: 0] += 1
                    if action.elementsEqual("blocked".utf8) { blocked[sni, default: 0] += 1 }
                }
            }
        }
        func best(_ counts: [ArraySlice<UInt8>: Int]) -> [(String, Int)] {
            counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.lexicographicallyPrecedes($1.key) }.prefix(n)
                .map { (String(decoding: $0.key, as: UTF8.self), $0.value) }
        }
        result.domains = best(domains)
        result.blocked = best(blocked)
        result.clients = best(clients).map { row in
            guard let name = names[ArraySlice(row.0.utf8)] else { return row }
            return ("\(row.0) (\(String(decoding: name, as: UTF8.self)))", row.1)
        }
        result.quic = best(quic)
        result.servers = servers.sorted { $0.value.queries > $1.value.queries }.prefix(n)
            .map { (String(decoding: $0.key, as: UTF8.self), $0.value.queries, $0.value.clients.count) }
        return result
    }
}
