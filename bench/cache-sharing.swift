// bench/cache-sharing.swift: what sharing the answer cache between workers costs per lookup
// (docs/CACHE.md).
//   swiftc -O bench/cache-sharing.swift -o /tmp/cache-sharing && /tmp/cache-sharing
import Synchronization
import Glibc

// Lookups in a 1,000-entry table, ns per lookup, in four layouts:
//   per-worker    two threads, each its own table, no lock (the layout before issue 21);
//   one Mutex     two threads, one table behind one Mutex (the lock's line moves on every lookup);
//   64 shards     two threads, 64 tables each behind its own Mutex, a key's shard by its hash
//                 (SharedAnswerCache's layout): the threads meet on a lock 1 time in 64;
//   64 shards, 1  one thread, the sharded layout: the uncontended lock alone.
// The threads look up back to back, with nothing between: far more contention than a relay
// whose worker spends ~8 µs a query elsewhere.
final class Table {
    var keys = [UInt64](repeating: 0, count: 2048)
    init() { for i in 0..<1000 { keys[(i &* 2654435761) & 2047] = UInt64(i) } }
    @inline(never) func find(_ k: UInt64) -> Bool { keys[Int(truncatingIfNeeded: k &* 2654435761) & 2047] == k }
}
final class Shard: Sendable { let lock = Mutex(Table()) }
final class Box: @unchecked Sendable {
    let shared = Mutex(Table())
    let shards = (0..<64).map { _ in Shard() }
}
let n = 20_000_000
let box = Box()
func now() -> Double { var t = timespec(); clock_gettime(CLOCK_MONOTONIC, &t); return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9 }

enum Layout: Int { case perWorker, oneMutex, sharded }

/// Each thread its own order through the keys (two workers answer different queries).
@inline(__always) func key(_ i: Int, thread: Int) -> UInt64 { UInt64((i &* (1 + 6 * thread) &+ 500 * thread) % 1000) }

func lookups(_ layout: Layout, thread: Int) {
    var hits = 0
    switch layout {
    case .perWorker:
        let mine = Table()
        for i in 0..<n where mine.find(key(i, thread: thread)) { hits += 1 }
    case .oneMutex:
        for i in 0..<n where box.shared.withLock({ $0.find(key(i, thread: thread)) }) { hits += 1 }
    case .sharded:
        for i in 0..<n {
            let key = key(i, thread: thread)
            let shard = box.shards[Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 58)]
            if shard.lock.withLock({ $0.find(key) }) { hits += 1 }
        }
    }
    if hits == -1 { print(hits) }
}

func run(_ layout: Layout, threads count: Int) -> Double {
    var threads: [pthread_t] = []
    let start = now()
    for t in 0..<count {
        var th = pthread_t()
        let arg = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        arg.pointee = layout.rawValue * 16 + t
        pthread_create(&th, nil, { p in
            let v = p!.assumingMemoryBound(to: Int.self).pointee
            lookups(Layout(rawValue: v / 16)!, thread: v % 16)
            return nil
        }, arg)
        threads.append(th)
    }
    for th in threads { pthread_join(th, nil) }
    return (now() - start) / Double(n) * 1e9
}

func ns(_ v: Double) -> String { "\((v * 10).rounded() / 10)" }
for _ in 0..<3 {
    let a = run(.perWorker, threads: 2), b = run(.oneMutex, threads: 2), c = run(.sharded, threads: 2), d = run(.sharded, threads: 1)
    print("ns/lookup: per-worker \(ns(a))   one Mutex \(ns(b))   64 shards \(ns(c))   64 shards, one thread \(ns(d))")
}
