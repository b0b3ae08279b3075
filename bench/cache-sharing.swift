// bench/cache-sharing.swift: why the answer cache is per worker (docs/CACHE.md).
//   swiftc -O bench/cache-sharing.swift -o /tmp/cache-sharing && /tmp/cache-sharing
import Synchronization
import Glibc

// Two threads each doing N lookups in a 1,000-entry table: (a) each its own table, no lock;
// (b) one shared table behind a Mutex. Reports ns per lookup.
final class Table { var keys = [UInt64](repeating: 0, count: 2048); init() { for i in 0..<1000 { keys[(i &* 2654435761) & 2047] = UInt64(i) } }
  @inline(never) func find(_ k: UInt64) -> Bool { keys[Int(truncatingIfNeeded: k &* 2654435761) & 2047] == k } }
let n = 20_000_000
func now() -> Double { var t = timespec(); clock_gettime(CLOCK_MONOTONIC, &t); return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9 }
final class Box: @unchecked Sendable { let shared = Mutex(Table()); }
let box = Box()
func run(_ shared: Bool) -> Double {
  var threads: [pthread_t] = []
  let start = now()
  for t in 0..<2 {
    var th = pthread_t()
    let arg = UnsafeMutablePointer<Int>.allocate(capacity: 1); arg.pointee = (shared ? 100 : 0) + t
    pthread_create(&th, nil, { p in
      let v = p!.assumingMemoryBound(to: Int.self).pointee
      var hits = 0
      if v >= 100 { for i in 0..<n { if box.shared.withLock({ $0.find(UInt64(i % 1000)) }) { hits += 1 } } }
      else { let mine = Table(); for i in 0..<n { if mine.find(UInt64(i % 1000)) { hits += 1 } } }
      if hits == -1 { print(hits) }
      return nil
    }, arg)
    threads.append(th)
  }
  for th in threads { pthread_join(th, nil) }
  return (now() - start) / Double(n) * 1e9
}
for _ in 0..<2 {
  let a = run(false), b = run(true)
  print("per-worker: \((a * 10).rounded() / 10) ns/lookup   shared+Mutex: \((b * 10).rounded() / 10) ns/lookup")
}
