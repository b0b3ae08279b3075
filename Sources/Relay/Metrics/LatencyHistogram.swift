/// How long answers took, as a Prometheus histogram with fixed bounds, kept by one worker: a
/// few compares and two adds per answer, no allocation (the buckets are inline).
struct LatencyHistogram: Sendable {
    /// Upper bounds in nanoseconds: 50 µs … 5 s. Local answers fall in the first buckets,
    /// forwarded ones spread over the rest; the last bucket (+Inf) is implicit.
    static let bounds: [UInt64] = [
        50_000, 100_000, 250_000, 500_000,
        1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000,
        100_000_000, 250_000_000, 500_000_000, 1_000_000_000, 2_500_000_000, 5_000_000_000,
    ]
    static let bucketCount = 17

    /// Observations per bucket (not cumulative: the exposition adds them up), the last +Inf.
    var buckets = InlineArray<17, Int>(repeating: 0)
    var count = 0
    var sumNanoseconds: UInt64 = 0

    /// Records `count` answers that each took `nanoseconds` (a batch answered together).
    @inline(__always)
    mutating func observe(nanoseconds: UInt64, count: Int = 1) {
        let bounds = Self.bounds
        var index = 0
        // Most answers land in the first buckets: a linear scan from the bottom is shortest.
        while index < bounds.count && nanoseconds > bounds[index] { index += 1 }
        buckets[index] += count
        self.count += count
        sumNanoseconds &+= nanoseconds &* UInt64(count)
    }

    static func + (a: LatencyHistogram, b: LatencyHistogram) -> LatencyHistogram {
        var c = a
        for i in 0..<bucketCount { c.buckets[i] += b.buckets[i] }
        c.count += b.count
        c.sumNanoseconds &+= b.sumNanoseconds
        return c
    }
}

extension LatencyHistogram {
    /// The upper bound (ms) of the bucket where quantile `q` falls (an upper estimate, as
    /// Prometheus' histogram_quantile is within a bucket), or nil before any observation; past
    /// the last bound, that bound.
    func quantileMilliseconds(_ q: Double) -> Double? {
        guard count > 0 else { return nil }
        let rank = Int((Double(count) * q).rounded(.up))
        var seen = 0
        for i in 0..<Self.bucketCount {
            seen += buckets[i]
            if seen >= rank { return Double(Self.bounds[min(i, Self.bounds.count - 1)]) / 1_000_000 }
        }
        return Double(Self.bounds[Self.bounds.count - 1]) / 1_000_000
    }
}
