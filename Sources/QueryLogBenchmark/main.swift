// querylog-bench: what the query log's writer thread costs per line, measured in one process
// without the network, so that formatting and writing can be told apart and compared run to run.
//
//   querylog-bench [--kind blocked|hot|miss] [--count N] [--rate R] [--workers W] [--sink file|null] [--dir DIR]
//                  [--clients N] [--names]
//
// --clients N: records come from N client addresses in turn (one by default); --names: each of
// them has a name (clients.names, as a lease file gives them), so the lines carry client_name.
//
// W producer threads each fill their own ring the way a worker does (records of the chosen kind,
// R per second in all, in a burst every millisecond) and the real `QueryLogWriter` drains,
// merges, formats and writes them. When every record is
// written, the writer thread's CPU time is read from /proc/self/task/<tid> (user and system
// ticks, and nanoseconds on CPU from schedstat) and printed as one JSON line per run:
//   sink file: lines go to DIR/queries.jsonl (page cache); sink null: to /dev/null, so the
//   system time left is the write calls alone and the difference is the page-cache copy.
// The blocked kind names a rule in DIR/blocklist.txt (100,000 `||name^` lines) per record, as the
// benchmark's blocked scenario does; hot logs cached answers; miss logs forwarded answers.
import Foundation
import Glibc
import LinuxNet
import Logging
import RelayCore
import ClientNames
import QueryLog

struct Options {
    var kind = "blocked"
    var count = 1_000_000
    var rate = 200_000
    var sink = "file"
    var dir = "/tmp"
    var workers = 1
    var clients = 1
    var names = false
}

func fail(_ message: String) -> Never {
    fputs("querylog-bench: \(message)\n", stderr)
    exit(2)
}

func parse() -> Options {
    var options = Options()
    var arguments = CommandLine.arguments.dropFirst()
    while let flag = arguments.popFirst() {
        guard let value = arguments.popFirst() else { fail("\(flag) needs a value") }
        switch flag {
        case "--kind":
            guard ["blocked", "hot", "miss"].contains(value) else { fail("--kind: blocked, hot or miss, not \(value)") }
            options.kind = value
        case "--count":
            guard let n = Int(value), n > 0 else { fail("--count: a positive number, not \(value)") }
            options.count = n
        case "--rate":
            guard let n = Int(value), n > 0 else { fail("--rate: a positive number, not \(value)") }
            options.rate = n
        case "--sink":
            guard value == "file" || value == "null" else { fail("--sink: file or null, not \(value)") }
            options.sink = value
        case "--workers":
            guard let n = Int(value), n > 0, n <= 64 else { fail("--workers: 1 to 64, not \(value)") }
            options.workers = n
        case "--dir": options.dir = value
        case "--clients":
            guard let n = Int(value), n > 0, n <= 65_536 else { fail("--clients: 1 to 65536, not \(value)") }
            options.clients = n
        case "--names":
            guard value == "on" || value == "off" else { fail("--names: on or off, not \(value)") }
            options.names = value == "on"
        default: fail("unknown option \(flag)")
        }
    }
    return options
}

func monotonic() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func wall() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
}

/// A /proc file whole ("" when it cannot be read).
func readText(_ path: String) -> String { (try? SystemInfo.readFile(path)) ?? "" }

/// The writer thread's id, found by the name it gives itself.
func writerThread() -> String? {
    guard let dir = opendir("/proc/self/task") else { return nil }
    defer { closedir(dir) }
    while let entry = readdir(dir) {
        let tid = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        if tid.first?.isNumber == true, readText("/proc/self/task/\(tid)/comm") == "querylog\n" { return tid }
    }
    return nil
}

/// (user ns, system ns, ns on CPU) of a thread.
func threadCPU(_ tid: String) -> (user: UInt64, system: UInt64, total: UInt64) {
    let stat = readText("/proc/self/task/\(tid)/stat")
    // Fields after the command name, which is in parentheses: state is field 3, utime 14, stime 15.
    let after = stat.split(separator: ")").last.map { $0.split(separator: " ") } ?? []
    let tick = UInt64(1_000_000_000 / sysconf(Int32(_SC_CLK_TCK)))
    let user = after.count > 12 ? (UInt64(after[11]) ?? 0) * tick : 0
    let system = after.count > 12 ? (UInt64(after[12]) ?? 0) * tick : 0
    let total = UInt64(readText("/proc/self/task/\(tid)/schedstat").split(separator: " ").first ?? "0") ?? 0
    return (user, system, total)
}

/// 100,000 names like the benchmark's block list: a host under one of 40,000 sites.
func blockedName(_ i: Int) -> String {
    var x = UInt64(i) &* 0x9E37_79B9_7F4A_7C15
    x ^= x >> 29
    return "track\(String(x % 0xFFFF, radix: 16)).s\(String(x >> 40 % 40_000, radix: 36))\(i % 40_000).test"
}

let options = parse()
let listPath = "\(options.dir)/blocklist.txt"
let logPath = "\(options.dir)/queries.jsonl"
let lines = 100_000
if options.kind == "blocked" {
    guard let file = fopen(listPath, "w") else { fail("cannot write \(listPath)") }
    for i in 0..<lines { fputs("||\(blockedName(i))^\n", file) }
    fclose(file)
}
unlink(logPath)
if options.sink == "null" { symlink("/dev/null", logPath) }

var logger = Logger(label: "querylog-bench")
logger.logLevel = .warning
/// Client k of `--clients`: 10.53.(k / 256).(k % 256).
func clientAddress(_ k: Int) -> IPAddress { .v4(IPv4Address(10, 53, UInt8(k >> 8), UInt8(k & 255))) }
let directory: ClientNameDirectory? = options.names ? ClientNameDirectory(reverseLookups: false) : nil
if let directory {
    var leases = ""
    for k in 0..<options.clients { leases += "0 02:00:00:00:00:00 \(clientAddress(k)) client-\(k).lan *\n" }
    directory.publish(ClientNameTable([(.leases, LeaseFile.parse(Array(leases.utf8), file: "bench.leases"))]))
}
let writer = QueryLogWriter(settings: .init(path: logPath, rotateSize: .max, keep: 1),
                            lists: options.kind == "blocked" ? [listPath] : [], names: directory, logger: logger)
let rings = (0..<options.workers).map { _ in writer.makeRing(capacity: 8192) }
do { try writer.start() } catch { fail("\(error)") }
usleep(20_000)
guard let tid = writerThread() else { fail("the writer thread (querylog) was not found") }

let names: [[UInt8]] = (0..<(options.kind == "hot" ? 1000 : lines)).map {
    switch options.kind {
    case "blocked": return Array(blockedName($0).utf8)
    case "hot": return Array("h\(1000 + $0).bench.test".utf8)
    default: return Array("m\($0)x\($0 &* 7919 % 100_003).bench.test".utf8)
    }
}
let client = Endpoint(address: .v4(IPv4Address(10, 53, 1, 2)), port: 40000)
let server = Endpoint(address: .v4(IPv4Address(10, 53, 2, 53)), port: 53)
let answer = IPAddress.v4(IPv4Address(10, 53, 2, 100))

/// Worker `w`'s share of the records (every `workers`-th), into its own ring, paced like queries
/// arriving: every millisecond the records due by then, in one burst as a batch of answers.
@Sendable func produce(_ w: Int, into ring: QueryLogRing, started: UInt64) {
    let workers = options.workers
    var i = w
    while i < options.count {
        let due = Int((monotonic() - started) * UInt64(options.rate) / 1_000_000_000)
        while i < min(due, options.count) {
            while ring.waiting >= ring.capacity { sched_yield() }
            guard let (record, name) = ring.reserve() else { fail("the ring refused a record") }
            fill(record, name: name, i)
            ring.commit()
            i += workers
        }
        usleep(1000)
    }
}

@Sendable func fill(_ record: UnsafeMutablePointer<QueryLogRecord>, name: UnsafeMutableRawBufferPointer, _ i: Int) {
    let bytes = names[i % names.count]
    for (j, b) in bytes.enumerated() { name[j] = b }
    record.pointee.time = wall()
    record.pointee.durationMicros = options.kind == "miss" ? 250 : 3
    record.pointee.proto = .udp
    record.pointee.client = Endpoint(address: options.clients == 1 ? client.address : clientAddress(i % options.clients),
                                     port: UInt16(40000 + i % 20000))
    record.pointee.server = server
    record.pointee.qtype = 1
    record.pointee.nameLength = UInt8(bytes.count)
    // blocked: NXDOMAIN by rule (list 0, a different line each time); hot: a cached answer;
    // miss: an answer from the upstream.
    let blocked = options.kind == "blocked"
    record.pointee.action = blocked ? .blocked : options.kind == "hot" ? .cached : .allowed
    record.pointee.rcode = blocked ? 3 : 0
    record.pointee.ruleList = blocked ? 0 : .max
    record.pointee.ruleLine = UInt32(i % lines + 1)
    record.pointee.answerCount = blocked ? 0 : 1
    record.pointee.answers.0 = answer
    record.pointee.upstream = options.kind == "miss" ? server : nil
}

let before = threadCPU(tid)
let started = monotonic()
let producers = rings.enumerated().map { w, ring in
    do {
        return try SystemThread.start(name: "producer-\(w)") { produce(w, into: ring, started: started) }
    } catch {
        fail("cannot start a producer: \(error)")
    }
}
for producer in producers { producer.join() }
while rings.contains(where: { $0.waiting > 0 }) { usleep(1000) }
usleep(50_000)  // past one drain interval: the last batch is formatted and written
let after = threadCPU(tid)
let elapsed = monotonic() - started
writer.stop()
var size = 0
if options.sink == "file" {
    var info = stat()
    if stat(logPath, &info) == 0 { size = Int(info.st_size) }
}
unlink(logPath)
if options.kind == "blocked" { unlink(listPath) }
let n = Double(options.count)
func perLine(_ a: UInt64, _ b: UInt64) -> String { String(format: "%.3f", Double(b &- a) / n / 1000) }
print("{\"kind\":\"\(options.kind)\",\"sink\":\"\(options.sink)\",\"lines\":\(options.count),\"rate\":\(options.rate),\"workers\":\(options.workers)," +
      "\"clients\":\(options.clients),\"names\":\(options.names)," +
      "\"bytes_per_line\":\(size / options.count),\"seconds\":\(String(format: "%.2f", Double(elapsed) / 1e9))," +
      "\"cpu_us_per_line\":\(perLine(before.total, after.total)),\"user_us_per_line\":\(perLine(before.user, after.user))," +
      "\"system_us_per_line\":\(perLine(before.system, after.system))}")
