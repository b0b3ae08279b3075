/// Puts the client's Initial CRYPTO stream back together from frames that may come in any order,
/// repeat, and span several packets and datagrams (Chrome splits a post-quantum ClientHello over
/// two). Bounded: nothing at or beyond `limit` is accepted, so a flow costs at most `limit` bytes.
/// Data that overlaps what is held must agree with it (a retransmission); data that disagrees
/// means the stream cannot be trusted.
struct CryptoStreamAssembler {
    static let defaultLimit = 64 << 10
    let limit: Int
    private(set) var bytes: [UInt8] = []
    /// Received ranges, sorted, merged, non-overlapping.
    private(set) var ranges: [Range<Int>] = []

    init(limit: Int = CryptoStreamAssembler.defaultLimit) { self.limit = limit }

    /// How many bytes from offset 0 are in hand without a gap.
    var contiguous: Int { ranges.first.map { $0.lowerBound == 0 ? $0.upperBound : 0 } ?? 0 }

    mutating func add(offset: UInt64, data: UnsafeRawBufferPointer) -> SNIFailure? {
        guard offset <= UInt64(limit), UInt64(data.count) <= UInt64(limit) - offset else {
            return SNIFailure(.cryptoOutOfRange, "CRYPTO data at \(offset)+\(data.count) beyond the \(limit)-byte bound")
        }
        guard !data.isEmpty else { return nil }
        let start = Int(offset), end = start + data.count
        if bytes.count < end { bytes.append(contentsOf: repeatElement(0, count: end - bytes.count)) }
        // Overlap with held data must agree byte for byte.
        for held in ranges where held.overlaps(start..<end) {
            let lo = max(held.lowerBound, start), hi = min(held.upperBound, end)
            for i in lo..<hi where bytes[i] != data[i - start] {
                return SNIFailure(.cryptoOutOfRange, "CRYPTO data at \(start)..<\(end) disagrees with data already received at \(i)")
            }
        }
        for i in 0..<data.count { bytes[start + i] = data[i] }
        insert(start..<end)
        return nil
    }

    private mutating func insert(_ new: Range<Int>) {
        var merged = new
        var kept: [Range<Int>] = []
        kept.reserveCapacity(ranges.count + 1)
        for r in ranges {
            if r.upperBound < merged.lowerBound || r.lowerBound > merged.upperBound {
                kept.append(r)
            } else {
                merged = min(r.lowerBound, merged.lowerBound)..<max(r.upperBound, merged.upperBound)
            }
        }
        kept.append(merged)
        kept.sort { $0.lowerBound < $1.lowerBound }
        ranges = kept
    }
}
