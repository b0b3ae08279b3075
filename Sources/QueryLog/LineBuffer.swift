/// The bytes of the query-log lines of one batch, written through a raw pointer: the writer
/// formats every answered query, on a core the workers may share, and an `[UInt8]` there costs a
/// uniqueness check, a retain and a release per append (measured: a third of the writer's time).
/// One owner (the writer thread's formatter), grown by doubling, freed with `deallocate()`.
///
/// Bounded pieces (numbers, addresses, names) ask for room once with `reserve(_:)`, write through
/// the pointer it returns and count what they wrote with `advance(by:)`; LineBuffer+Text has them.
package struct LineBuffer {
    package private(set) var base: UnsafeMutablePointer<UInt8>
    package private(set) var count = 0
    private(set) var capacity: Int

    package init(capacity: Int) {
        self.capacity = max(capacity, 64)
        base = .allocate(capacity: self.capacity)
    }

    /// Frees the memory; the buffer must not be used afterwards.
    package func deallocate() { base.deallocate() }

    package var isEmpty: Bool { count == 0 }

    /// The bytes written so far.
    package var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    package mutating func removeAll() { count = 0 }

    /// Drops everything after the first `length` bytes.
    mutating func truncate(to length: Int) { count = min(count, max(0, length)) }

    /// Room for at least `n` more bytes: where they go. Count the bytes written with `advance(by:)`.
    @inline(__always)
    package mutating func reserve(_ n: Int) -> UnsafeMutablePointer<UInt8> {
        if capacity - count < n { grow(n) }
        return base + count
    }

    /// Counts `n` bytes written at the pointer `reserve` returned (n ≤ what was reserved).
    @inline(__always)
    package mutating func advance(by n: Int) { count += n }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        if count == capacity { grow(1) }
        base[count] = byte
        count += 1
    }

    @inline(__always)
    package mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        let n = bytes.count
        Self.copy(source, to: UnsafeMutableRawPointer(reserve(n)), count: n)
        count += n
    }

    @inline(__always)
    mutating func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// A String's UTF-8 (for text made once per flow or status line; literals go through the
    /// StaticString overload, so this one has its own label).
    package mutating func append(string text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Copies `n` bytes. Most pieces of a line are 2 to 32 bytes (literals, names); for those a
    /// call into memcpy and its size dispatch cost more than the copy, so they are moved as two
    /// or four overlapping 8-byte words, never touching a byte outside either range.
    @inline(__always)
    static func copy(_ from: UnsafeRawPointer, to: UnsafeMutableRawPointer, count n: Int) {
        if n >= 8 && n <= 16 {
            let a = from.loadUnaligned(as: UInt64.self)
            let b = from.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            to.storeBytes(of: a, as: UInt64.self)
            to.storeBytes(of: b, toByteOffset: n - 8, as: UInt64.self)
        } else if n > 16 && n <= 32 {
            let a = from.loadUnaligned(as: UInt64.self)
            let b = from.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
            let c = from.loadUnaligned(fromByteOffset: n - 16, as: UInt64.self)
            let d = from.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            to.storeBytes(of: a, as: UInt64.self)
            to.storeBytes(of: b, toByteOffset: 8, as: UInt64.self)
            to.storeBytes(of: c, toByteOffset: n - 16, as: UInt64.self)
            to.storeBytes(of: d, toByteOffset: n - 8, as: UInt64.self)
        } else if n >= 4 && n < 8 {
            let a = from.loadUnaligned(as: UInt32.self)
            let b = from.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
            to.storeBytes(of: a, as: UInt32.self)
            to.storeBytes(of: b, toByteOffset: n - 4, as: UInt32.self)
        } else if n < 4 {
            for i in 0..<n { to.storeBytes(of: from.load(fromByteOffset: i, as: UInt8.self), toByteOffset: i, as: UInt8.self) }
        } else {
            to.copyMemory(from: from, byteCount: n)
        }
    }

    @inline(never)
    private mutating func grow(_ needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity - count < needed { newCapacity *= 2 }
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.initialize(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }
}
