import Configuration
import LinuxNet
import RelayCore
import Synchronization

/// Queries per second per client prefix (`limits.client_qps`), as token buckets shared by every
/// worker: SO_REUSEPORT spreads one client's queries over the workers by source port, so a bucket
/// per worker would give a client N times its rate.
///
/// A fixed table of 65,536 buckets (1.5 MiB, allocated once): 16,384 sets of 4, a client prefix
/// hashed (with a per-process random key, so that nobody can aim at another client's set) to one
/// set; a prefix not in its set takes the way used longest ago. Millions of spoofed sources
/// therefore cost no memory, only evictions. A bucket is two words updated with one
/// compare-and-swap each: the query path takes no lock, and the atomics are shared only when one
/// client's queries reach two workers at the same moment (measured: issue 19's note).
final class ClientRateLimiter: @unchecked Sendable {
    struct Settings: Equatable, Sendable {
        var qps: Int
        var burst: Int
        var prefixV4: Int
        var prefixV6: Int
        var exempt: [IPPrefix]
    }

    enum Verdict: Equatable { case allow, limit }

    static let ways = 4
    static let sets = 16_384
    static let wordsPerBucket = 3

    let settings: Settings
    /// key, state, logged — per bucket. key: the prefix's hash (never 0); state: the last refill
    /// in ms (high 32 bits, wrapping) and the tokens in thousandths (low 32 bits); logged: the
    /// second it was last reported in the relay's log.
    private let words: InlineArray<196_608, Atomic<UInt64>>
    private let seed: UInt64
    private let maxTokens: UInt64
    /// Milli-tokens per ms = tokens per second.
    private let refillPerMillisecond: UInt64
    private let maskV4: UInt32
    private let maskV6High: UInt64
    private let maskV6Low: UInt64

    init(_ settings: Settings, seed: UInt64) {
        precondition(settings.qps > 0 && settings.burst > 0)
        self.settings = settings
        self.seed = seed | 1
        maxTokens = UInt64(min(settings.burst, 4_000_000)) * 1000
        refillPerMillisecond = UInt64(settings.qps)
        maskV4 = settings.prefixV4 == 0 ? 0 : ~UInt32(0) << (32 - settings.prefixV4)
        maskV6High = settings.prefixV6 >= 64 ? ~0 : settings.prefixV6 == 0 ? 0 : ~UInt64(0) << (64 - settings.prefixV6)
        maskV6Low = settings.prefixV6 <= 64 ? 0 : settings.prefixV6 >= 128 ? ~0 : ~UInt64(0) << (128 - settings.prefixV6)
        words = InlineArray { _ in Atomic<UInt64>(0) }
    }

    /// Takes one token from `client`'s bucket at `nowMilliseconds` (a monotonic clock); `.limit`
    /// when it has none.
    @inline(__always)
    func admit(_ client: IPAddress, nowMilliseconds: UInt64) -> Verdict {
        if !settings.exempt.isEmpty {
            for prefix in settings.exempt where prefix.contains(client) { return .allow }
        }
        let key = self.key(client)
        let now = UInt32(truncatingIfNeeded: nowMilliseconds)
        let base = Int(key % UInt64(Self.sets)) * Self.ways * Self.wordsPerBucket
        var bucket = -1
        for way in 0..<Self.ways where words[base + way * Self.wordsPerBucket].load(ordering: .relaxed) == key {
            bucket = base + way * Self.wordsPerBucket
            break
        }
        if bucket < 0 { bucket = claim(base: base, key: key, now: now) }
        // Refill for the time passed, then take a token; a lost race is retried a few times
        // (another worker took a token of the same client meanwhile), then let through.
        for _ in 0..<4 {
            let old = words[bucket + 1].load(ordering: .relaxed)
            let stamp = UInt32(truncatingIfNeeded: old >> 32)
            // Signed: another worker whose batch began a few ms later may have stamped the bucket
            // first. Read unsigned, that small step back was ~49 days and refilled the bucket
            // whole (the e2e flood test saw 25 % more answers than the rate). A step back of up to
            // a minute is no time passed; a longer one is the 32-bit clock wrapping (or ~25 days
            // of quiet): full.
            let delta = Int64(Int32(bitPattern: now &- stamp))
            let elapsed: UInt64 = delta >= 0 ? UInt64(delta) : delta > -60_000 ? 0 : 1 << 22
            let stampNow = delta >= 0 || delta <= -60_000
            var tokens = min(maxTokens, (old & 0xFFFF_FFFF) + min(elapsed, 1 << 22) * refillPerMillisecond)
            let verdict: Verdict
            if tokens >= 1000 {
                tokens -= 1000
                verdict = .allow
            } else {
                verdict = .limit
            }
            let new = UInt64(stampNow ? now : stamp) << 32 | tokens
            if words[bucket + 1].compareExchange(expected: old, desired: new, ordering: .relaxed).exchanged { return verdict }
        }
        return .allow
    }

    /// Whether to report `client` in the relay's log now: at most once per 10 s per bucket.
    func shouldReport(_ client: IPAddress, nowMilliseconds: UInt64) -> Bool {
        let key = self.key(client)
        let base = Int(key % UInt64(Self.sets)) * Self.ways * Self.wordsPerBucket
        let second = nowMilliseconds / 1000 + 1
        for way in 0..<Self.ways where words[base + way * Self.wordsPerBucket].load(ordering: .relaxed) == key {
            let slot = base + way * Self.wordsPerBucket + 2
            let last = words[slot].load(ordering: .relaxed)
            guard last == 0 || second >= last + 10 else { return false }
            return words[slot].compareExchange(expected: last, desired: second, ordering: .relaxed).exchanged
        }
        return false
    }

    /// The prefix `client` is limited as (`client_prefix_v4`/`_v6`), as the log names it.
    func prefix(of client: IPAddress) -> IPPrefix {
        IPPrefix(address: client, length: client.isIPv6 ? settings.prefixV6 : settings.prefixV4)
    }

    /// Takes the way of the set used longest ago for `key`, with a full bucket.
    private func claim(base: Int, key: UInt64, now: UInt32) -> Int {
        var oldest = base
        var oldestAge: UInt32 = 0
        for way in 0..<Self.ways {
            let bucket = base + way * Self.wordsPerBucket
            let existing = words[bucket].load(ordering: .relaxed)
            if existing == 0 { oldest = bucket; break }
            let age = now &- UInt32(truncatingIfNeeded: words[bucket + 1].load(ordering: .relaxed) >> 32)
            if age >= oldestAge { oldestAge = age; oldest = bucket }
        }
        // A race with another worker claiming the same way for another prefix only costs one of
        // them a fresh bucket.
        words[oldest + 1].store(UInt64(now) << 32 | maxTokens, ordering: .relaxed)
        words[oldest + 2].store(0, ordering: .relaxed)
        words[oldest].store(key, ordering: .relaxed)
        return oldest
    }

    /// A 64-bit keyed hash of the client's prefix (never 0: 0 marks an empty bucket).
    @inline(__always)
    private func key(_ client: IPAddress) -> UInt64 {
        var h: UInt64
        switch client {
        case .v4(let a):
            h = UInt64(UInt32(bigEndian: a.rawValue) & maskV4) | 1 << 40
        case .v6(let a):
            h = (UInt64(bigEndian: a.high) & maskV6High) ^ Self.mix(UInt64(bigEndian: a.low) & maskV6Low ^ 2 << 40)
        }
        h = Self.mix(h ^ seed)
        return h == 0 ? 1 : h
    }

    /// splitmix64's finalizer.
    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension ClientRateLimiter {
    /// The buckets `limits` asks for (one table for all workers, keyed with a random seed), or
    /// nil when `client_qps` is 0.
    convenience init?(limits: Configuration.Limits) {
        guard limits.clientQPS > 0 else { return nil }
        let random = RandomSource()
        self.init(.init(qps: limits.clientQPS, burst: limits.effectiveBurst, prefixV4: limits.clientPrefixV4,
                        prefixV6: limits.clientPrefixV6, exempt: limits.exempt),
                  seed: (0..<4).reduce(UInt64(0)) { seed, _ in seed << 16 | UInt64(random.next16()) })
    }
}
