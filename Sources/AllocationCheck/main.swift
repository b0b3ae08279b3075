// alloc-check: proves the query pipeline's hot paths allocate nothing per query (issue 21), in a
// release build (a debug build allocates in unspecialized generic code the optimizer removes, so
// the unit suite cannot make this check). Linked with CAllocationCounter, which stands in for
// malloc in this executable and counts the calling thread's allocations.
//
//   alloc-check            one JSON line: allocations per path over 10,000 queries; exit 1 if any
//   NOALLOC_TRACE=1 alloc-check    also each allocation's backtrace on stderr (to find one)
//
// Paths: a name a list blocks, a forward decision (the upstream chosen, the query's cache key
// made), a cache hit (the answer copied out with its TTLs counted down). Zone answers and aliases
// allocate by design (QueryPipeline) and are not checked. scripts/test.sh runs it.
import CAllocationCounter
import Configuration
import DNS
import Foundation
import Glibc
import Pipeline
import RelayCore
import Rules
import Zones

let queries = 10_000

func fail(_ message: String) -> Never {
    FileHandle.standardError.write("alloc-check: \(message)\n".data(using: .utf8)!)
    exit(1)
}

// The counter counts (else a zero would prove nothing).
tr_alloc_count_begin()
let probe = [Int](repeating: 1, count: Int(getpid() % 100) + 100)
guard tr_alloc_count_end() >= 1, probe.count >= 100 else { fail("the allocation counter saw no allocation where one was made") }

// A list and a configuration, as a user writes them.
let directory = NSTemporaryDirectory() + "alloc-check-\(getpid())"
try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: directory) }
let rulesText = (0..<1000).map { "||ads\($0).test^" }.joined(separator: "\n") + "\n@@||good.ads1.test^\n"
try rulesText.write(toFile: directory + "/block.txt", atomically: true, encoding: .utf8)
let configuration = try ConfigurationParser(file: directory + "/relay.yaml").parse("""
    upstream:
      mode: original
    filters:
      lists: [block.txt]
    cache:
      entries: 1000
    """)
let rules = try configuration.filters.loadRuleSet()
let pipeline = QueryPipeline(configuration: configuration, rules: rules, zones: .empty,
                             listeners: [Endpoint(address: IPAddress("127.0.0.1")!, port: 15353)])
let asked = Endpoint(address: IPAddress("10.53.2.53")!, port: 53)
let client = Endpoint(address: IPAddress("10.53.1.2")!, port: 40000)
let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4160, alignment: 8)

/// `name` decided `queries` times as the datapath decides it (copied into a buffer allocated once,
/// parsed, decided); the allocations counted and the last outcome.
func measure(_ name: String) -> (allocations: UInt, outcome: QueryOutcome?) {
    let wire = QueryBuilder.query(name: name, type: 1, id: 0x4242, ednsPayloadSize: 1232)!
    let query = UnsafeMutableRawBufferPointer.allocate(byteCount: wire.count, alignment: 8)
    defer { query.deallocate() }
    query.copyBytes(from: wire)
    var outcome: QueryOutcome?
    func once() {
        buffer.baseAddress!.copyMemory(from: query.baseAddress!, byteCount: query.count)
        guard case .query(let parsed) = QueryParser.classify(UnsafeRawBufferPointer(query)) else { return }
        let facts = QueryFacts(query: parsed, client: client, destination: asked, transport: .udp)
        outcome = pipeline.decide(facts, in: buffer, queryLength: query.count, now: 100)
    }
    for _ in 0..<100 { once() }  // warm-up
    tr_alloc_trace(getenv("NOALLOC_TRACE") != nil ? 1 : 0)
    tr_alloc_count_begin()
    for _ in 0..<queries { once() }
    let counted = tr_alloc_count_end()
    tr_alloc_trace(0)
    return (UInt(counted), outcome)
}

var results: [String: UInt] = [:]

let blocked = measure("www.ads7.test")
guard case .answered(_, .blocked, _, _) = blocked.outcome else { fail("www.ads7.test was not blocked: \(String(describing: blocked.outcome))") }
results["blocked"] = blocked.allocations

let forwarded = measure("www.example.test")
guard case .forward(let forward, _) = forwarded.outcome else { fail("www.example.test was not forwarded: \(String(describing: forwarded.outcome))") }
results["forward"] = forwarded.allocations

// The upstream's answer to it, remembered as the worker does when it arrives.
let answerWire: [UInt8] = {
    var a = QueryBuilder.query(name: "www.example.test", type: 1, id: 1, ednsPayloadSize: nil)!
    a[2] = 0x81; a[3] = 0x80; a[7] = 1
    return a + [0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 10, 53, 9, 1]
}()
let end = answerWire.withUnsafeBytes { Question.end(in: $0)! }
answerWire.withUnsafeBytes { pipeline.cache.remember($0, questionEnd: end, flags: 0, key: forward.cacheKey, now: 100) }
let hit = measure("www.example.test")
guard case .answered(_, .cached, _, _) = hit.outcome else { fail("www.example.test was not a cache hit: \(String(describing: hit.outcome))") }
results["cache_hit"] = hit.allocations

buffer.deallocate()
let line = "{" + results.keys.sorted().map { "\"\($0)\":\(results[$0]!)" }.joined(separator: ",") + ",\"queries_each\":\(queries)}"
print(line)
if results.values.contains(where: { $0 > 0 }) { fail("allocations on a hot path (NOALLOC_TRACE=1 shows where)") }
