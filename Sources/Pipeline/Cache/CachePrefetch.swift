import CLinuxShim
import DNS
import Synchronization

/// Brings into the CPU's cache what the answer cache lookups of a batch of received queries will
/// read: every question's bucket head at once, then, one query ahead of the worker, the entry a
/// bucket names and the first lines of that entry's answer. A hit then finds them there instead
/// of waiting on memory three times in a row.
///
/// Under load the kernel's networking evicts the cache's tables between batches, and a lookup's
/// reads depend on each other (the bucket gives the entry, the entry the answer), so each was a
/// miss in series: in the hot scenario (1,000 names answered from the cache) the bucket's load
/// alone was half of `CacheStage.lookup`'s samples. Here the buckets of the whole batch are
/// requested together, and each entry and answer while the query before it is handled, so the
/// misses overlap with work. The lookup
/// itself is unchanged and still takes the shard's lock: this reads only the bucket heads
/// (atomics) and otherwise only prefetches, so a guess made stale by another worker's insert
/// costs a wasted fetch, never a wrong answer. The question's hash chooses shard and bucket
/// (`AnswerCache.Hash.question`) precisely so that it can be worked out here from the query's
/// bytes, before the query is parsed and its flags and key known.
///
/// Owned by one worker; its buffer is allocated once.
public final class CachePrefetch {
    /// Per query of the batch: its shard (−1: none) and its bucket.
    private let shards: UnsafeMutableBufferPointer<Int32>
    private let buckets: UnsafeMutableBufferPointer<Int32>
    private let batch: Int
    /// How many of them the last `fetch` worked out.
    private var placed = 0

    /// For batches of up to `batch` queries.
    public init(batch: Int) {
        self.batch = max(1, batch)
        shards = .allocate(capacity: self.batch)
        buckets = .allocate(capacity: self.batch)
    }

    deinit {
        shards.deallocate()
        buckets.deallocate()
    }

    /// Warms the bucket heads that looking up the questions of `count` messages will read:
    /// `message(i)` is the i-th DNS message in wire form, header first. A malformed question is
    /// skipped (the lookup never happens); past `batch` messages, the rest are. Then, before the
    /// worker handles query i, `fetchEntry(i + 1)` warms what the next one's bucket names.
    @inline(__always)
    public func fetch(_ cache: SharedAnswerCache, count: Int, message: (Int) -> UnsafeRawBufferPointer) {
        placed = 0
        guard cache.isEnabled else { return }
        let n = min(count, batch)
        let storages = cache.storages
        for i in 0..<n {
            guard let place = Self.place(of: message(i), in: cache) else {
                shards[i] = -1
                continue
            }
            shards[i] = Int32(place.shard)
            buckets[i] = Int32(place.bucket)
            tr_prefetch(storages[place.shard].buckets + place.bucket)
        }
        placed = n
    }

    /// Warms the entry that query `i`'s bucket names and the first lines of its answer. Called
    /// one query ahead, so that its bucket head (asked for by `fetch`) has arrived and its own
    /// reads arrive while the query before it is handled: reading all the heads right after
    /// `fetch` waited on them (half of this type's samples), for every query, blocked ones too.
    @inline(__always)
    public func fetchEntry(_ i: Int, in cache: SharedAnswerCache) {
        guard i < placed, shards[i] >= 0 else { return }
        let storage = cache.storages[Int(shards[i])]
        guard let index = Self.entryGuess(storage, bucket: Int(buckets[i])) else { return }
        let entry = UnsafeRawPointer(storage.entries + index)
        tr_prefetch(entry)
        tr_prefetch(entry + 64)
        let answer = UnsafeRawPointer(storage.answers + index * AnswerCache.slotStride)
        tr_prefetch(answer)
        tr_prefetch(answer + 64)
    }

    /// The shard and bucket the lookup of the question in `message` will read (the same hash),
    /// or nil when the question is malformed.
    @inline(__always)
    static func place(of message: UnsafeRawBufferPointer, in cache: SharedAnswerCache) -> (shard: Int, bucket: Int)? {
        guard let end = Question.end(in: message) else { return nil }
        let h = AnswerCache.questionHash(message, end: end, seed: cache.seed)
        let shard = cache.shardIndex(h)
        return (shard, Int(truncatingIfNeeded: h) & cache.storages[shard].bucketMask)
    }

    /// The first entry on that bucket's chain as it stands now (another worker may change it the
    /// next moment: a guess), or nil for an empty bucket.
    @inline(__always)
    static func entryGuess(_ storage: AnswerCache.Storage, bucket: Int) -> Int? {
        let index = storage.buckets[bucket].load(ordering: .relaxed)
        return index >= 0 ? Int(index) : nil
    }
}
