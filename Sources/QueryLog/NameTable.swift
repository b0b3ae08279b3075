/// Short byte strings by small integer (action, rcode and record-type names; list paths as JSON),
/// stored back to back in one allocation: appending one to a line is an index and a copy, with no
/// reference counting and no lazy-global check (an `[[UInt8]]` costs a retain and release per
/// use, a `static let` a swift_once). Owned by one thread; freed with `deallocate()`.
struct NameTable {
    private let bytes: UnsafeMutablePointer<UInt8>
    /// Per entry: offset in `bytes` (high 32 bits) and length (low 32 bits).
    private let spans: UnsafeMutablePointer<UInt64>
    let count: Int

    init(_ entries: [[UInt8]]) {
        count = entries.count
        let total = entries.reduce(0) { $0 + $1.count }
        bytes = .allocate(capacity: max(total, 1))
        spans = .allocate(capacity: max(count, 1))
        var offset = 0
        for (i, entry) in entries.enumerated() {
            (bytes + offset).initialize(from: entry, count: entry.count)
            spans[i] = UInt64(offset) << 32 | UInt64(entry.count)
            offset += entry.count
        }
    }

    init(_ entries: [String]) {
        self.init(entries.map { Array($0.utf8) })
    }

    func deallocate() {
        bytes.deallocate()
        spans.deallocate()
    }

    /// Entry `i` (0 ≤ i < count).
    @inline(__always)
    subscript(i: Int) -> UnsafeRawBufferPointer {
        let span = spans[i]
        return UnsafeRawBufferPointer(start: bytes + Int(span >> 32), count: Int(span & 0xffff_ffff))
    }
}
