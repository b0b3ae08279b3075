import Testing
import DNS
import RelayCore
@testable import Pipeline

/// The answer cache's batch warm-up (`CachePrefetch`) and the hash it shares with the lookup: the
/// warm-up must name the very entry a lookup will read, whatever the letter case, and survive
/// any bytes a client sends. (The hash's letter fold: RelayCoreTests/ASCIICaseTests.)
@Suite struct CachePrefetchTests {
    static func questionHash(_ name: String, type: UInt16 = 1, seed: UInt64 = 1) -> UInt64 {
        let query = AnswerCacheTests.query(name, type: type)
        return query.withUnsafeBytes { AnswerCache.questionHash($0, end: Question.end(in: $0)!, seed: seed) }
    }

    /// Names of every length around the word size: letter case never changes the hash; another
    /// name, type or seed does.
    @Test(arguments: ["a", "ab.c", "abc.de", "x.lab.test", "www.example.com", "a-much-longer-label.with.several.parts.example"])
    func caseDoesNotChangeTheHashAndTheNameDoes(name: String) {
        #expect(Self.questionHash(name) == Self.questionHash(name.uppercased()))
        #expect(Self.questionHash(name) != Self.questionHash(name + "x"))
        #expect(Self.questionHash(name) != Self.questionHash(name, type: 28))
        #expect(Self.questionHash(name) != Self.questionHash(name, seed: 2))
    }

    /// The warm-up's guess for a query is the entry the lookup then hits: one shard or many, in
    /// another letter case.
    @Test(arguments: [1, 4, 16])
    func theGuessIsTheEntryTheLookupHits(workers: Int) throws {
        let shared = SharedAnswerCache(settings: .init(entries: 4096), workers: workers)
        let stage = CacheStage(shared: shared)
        let names = (0..<200).map { "host\($0).lab.test" }
        for name in names { SharedAnswerCacheTests.store(stage, name, now: 100) }
        for name in names {
            let query = AnswerCacheTests.query(name.uppercased())
            let place = try #require(query.withUnsafeBytes { CachePrefetch.place(of: $0, in: shared) })
            // The entry is on that bucket's chain (most often its head).
            var index = CachePrefetch.entryGuess(shared.storages[place.shard], bucket: place.bucket)
            var found = false
            while let i = index {
                let slot = UnsafeRawBufferPointer(start: shared.storages[place.shard].answers + i * AnswerCache.slotStride, count: AnswerCache.slotSize)
                if query.withUnsafeBytes({ Question.matches(query: $0, end: Question.end(in: $0)!, response: slot) }) { found = true; break }
                let next = shared.storages[place.shard].entries[i].nextInBucket
                index = next >= 0 ? Int(next) : nil
            }
            #expect(found, "\(name)")
            #expect(SharedAnswerCacheTests.lookup(stage, name.uppercased(), now: 110) != nil)
        }
    }

    /// Whatever a client sends, the warm-up neither reads past the message nor stops the batch:
    /// malformed questions are skipped, the rest are warmed, and the cache still answers.
    @Test func hostileMessagesAreSkipped() throws {
        let shared = SharedAnswerCache(settings: .init(entries: 256), workers: 2)
        let stage = CacheStage(shared: shared)
        SharedAnswerCacheTests.store(stage, "www.lab.test", now: 100)
        let good = AnswerCacheTests.query("www.lab.test")
        var messages: [[UInt8]] = [
            [], [0], Array(good[0..<12]), Array(good[0..<13]),       // empty, short, header only, a cut name
            Array(good[0..<(good.count - 1)]),                         // type and class cut short
            Array(good[0..<12]) + [0xc0, 0x0c, 0, 1, 0, 1],            // a compression pointer
            Array(good[0..<12]) + [64] + [UInt8](repeating: 0x41, count: 64) + [0, 0, 1, 0, 1],  // a 64-byte label
            Array(good[0..<12]) + [UInt8](repeating: 0, count: 5),     // the root
            good,
        ]
        var random = SystemRandomNumberGenerator()
        for _ in 0..<500 { messages.append((0..<Int.random(in: 0..<80, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }) }
        let prefetch = CachePrefetch(batch: 8)  // fewer than the messages: the rest are left alone
        for start in stride(from: 0, to: messages.count, by: 8) {
            let batch = Array(messages[start..<min(start + 8, messages.count)])
            // Each message in a buffer of exactly its size, as a bounds checker would see it.
            let buffers = batch.map { bytes -> UnsafeMutableRawBufferPointer in
                let b = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
                b.copyBytes(from: bytes)
                return b
            }
            defer { buffers.forEach { $0.deallocate() } }
            prefetch.fetch(shared, count: buffers.count + 4) { UnsafeRawBufferPointer(buffers[min($0, buffers.count - 1)]) }
            for i in 0...(buffers.count + 4) { prefetch.fetchEntry(i, in: shared) }  // past the batch too
        }
        #expect(try #require(SharedAnswerCacheTests.lookup(stage, "WWW.lab.TEST", now: 101)).answer.count > good.count)
    }
}
