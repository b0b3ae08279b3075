import Foundation
import Testing
import DNS
import RelayCore
@testable import Pipeline

/// The cache the workers share, through the per-worker stages as the workers use it: what one
/// worker stored, another finds; an entry about to expire is prefetched by one worker only; the
/// capacity is the whole relay's; two threads hammering it at once get whole, correct answers.
@Suite struct SharedAnswerCacheTests {
    static let key = CacheKey(server: AnswerCacheTests.server)

    /// A query as the datapath holds it (its buffer has room for the answer) and its parse.
    static func lookup(_ stage: CacheStage, _ name: String, id: UInt16 = 7, now: UInt32) -> (answer: [UInt8], prefetch: Bool)? {
        let query = AnswerCacheTests.query(name, id: id)
        var buffer = [UInt8](repeating: 0, count: 4096)
        buffer.replaceSubrange(0..<query.count, with: query)
        guard case .query(let parsed) = query.withUnsafeBytes({ QueryParser.classify($0) }) else { return nil }
        let hit = buffer.withUnsafeMutableBytes { stage.lookup($0, queryLength: query.count, query: parsed, key: key, limit: 4096, now: now) }
        return hit.map { (Array(buffer[0..<$0.length]), $0.prefetch) }
    }

    static func store(_ stage: CacheStage, _ name: String, ttl: UInt32 = 60, now: UInt32) {
        let answer = AnswerCacheTests.answer(to: AnswerCacheTests.query(name), ttls: [ttl])
        let end = answer.withUnsafeBytes { Question.end(in: $0)! }
        answer.withUnsafeBytes { stage.remember($0, questionEnd: end, flags: 0, key: key, now: now) }
    }

    @Test func whatOneWorkerStoredAnotherFinds() throws {
        let shared = SharedAnswerCache(settings: .init())
        let (first, second) = (CacheStage(shared: shared), CacheStage(shared: shared))
        #expect(Self.lookup(second, "www.lab.test", now: 100) == nil)
        Self.store(first, "www.lab.test", now: 100)
        let hit = try #require(Self.lookup(second, "www.lab.test", id: 0x1234, now: 110))
        #expect(hit.answer[0] == 0x12 && hit.answer[1] == 0x34 && AnswerCacheTests.ttl(hit.answer) == 50)
        // Each worker counts its own; the cache's totals are the relay's.
        #expect(first.statistics.inserted == 1 && first.statistics.hits == 0)
        #expect(second.statistics.hits == 1 && second.statistics.misses == 1)
        #expect(shared.totals.entries == 1)
    }

    @Test func aPopularEntryIsPrefetchedByOneWorkerOnly() throws {
        let shared = SharedAnswerCache(settings: .init())
        let stages = (0..<4).map { _ in CacheStage(shared: shared) }
        Self.store(stages[0], "popular.lab.test", ttl: 100, now: 0)
        for stage in stages { _ = Self.lookup(stage, "popular.lab.test", now: 1) }  // popular: hits ≥ 3
        // In its last tenth: the first worker to see it asks again, the others do not.
        let asked = stages.map { Self.lookup($0, "popular.lab.test", now: 95)?.prefetch ?? false }
        #expect(asked == [true, false, false, false])
        // A failed prefetch lets a later hit ask again.
        let query = AnswerCacheTests.query("popular.lab.test")
        let end = query.withUnsafeBytes { Question.end(in: $0)! }
        query.withUnsafeBytes { stages[2].prefetchFailed($0, questionEnd: end, flags: 0, key: Self.key) }
        #expect(Self.lookup(stages[3], "popular.lab.test", now: 96)?.prefetch == true)
    }

    @Test func theCapacityIsTheRelaysAndSpreadOverTheShards() {
        // Twice the workers in shards, up to 64, at least 64 entries each.
        #expect(SharedAnswerCache(settings: .init(entries: 10_000), workers: 1).shardCount == 1)
        #expect(SharedAnswerCache(settings: .init(entries: 10_000), workers: 2).shardCount == 4)
        #expect(SharedAnswerCache(settings: .init(entries: 10_000), workers: 3).shardCount == 8)
        #expect(SharedAnswerCache(settings: .init(entries: 10_000), workers: 64).shardCount == 64)
        #expect(SharedAnswerCache(settings: .init(entries: 200), workers: 16).shardCount == 2)
        let shared = SharedAnswerCache(settings: .init(entries: 6_400), workers: 32)
        #expect(shared.shardCount == 64)
        let stage = CacheStage(shared: shared)
        for i in 0..<20_000 { Self.store(stage, "n\(i).lab.test", now: 0) }
        let totals = shared.totals
        // 100 per shard, every shard full.
        #expect(totals.entries == 6_400 && totals.evicted == 20_000 - 6_400)
        // A small cache has fewer shards, and holds exactly what it was given.
        let small = SharedAnswerCache(settings: .init(entries: 500), workers: 8)
        let smallStage = CacheStage(shared: small)
        for i in 0..<5_000 { Self.store(smallStage, "s\(i).lab.test", now: 0) }
        #expect(small.totals.entries == 500)
        #expect(SharedAnswerCache(settings: .init(entries: 0)).isEnabled == false)
    }

    /// Two threads at once, one storing and both looking up: every hit is the whole answer to its
    /// own name (no torn copy), and nothing crashes.
    @Test func twoWorkersAtOnceGetWholeAnswers() async {
        let shared = SharedAnswerCache(settings: .init(entries: 2_000), workers: 2)
        let names = (0..<500).map { "w\($0).lab.test" }
        let results = await withTaskGroup(of: (Int, Int).self) { group in
            for worker in 0..<2 {
                group.addTask {
                    let stage = CacheStage(shared: shared)
                    var hits = 0, wrong = 0
                    for round in 0..<40 {
                        for (i, name) in names.enumerated() where (i + round + worker) % 3 == 0 {
                            if worker == 0 { Self.store(stage, name, ttl: 300, now: 1) }
                            guard let hit = Self.lookup(stage, name, id: UInt16(i), now: 2) else { continue }
                            hits += 1
                            let expected = AnswerCacheTests.answer(to: AnswerCacheTests.query(name, id: UInt16(i)), ttls: [299])
                            if hit.answer != expected { wrong += 1 }
                        }
                    }
                    return (hits, wrong)
                }
            }
            return await group.reduce(into: [(Int, Int)]()) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0.1 == 0 }, "\(results)")
        #expect(results.allSatisfy { $0.0 > 0 }, "\(results)")
    }
}
