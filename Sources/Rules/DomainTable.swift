/// Names → chains of rule indices, built for millions of names in little memory: the names sit
/// in one byte arena, the table is open addressing over 32-bit entry indices, and lookups take a
/// byte slice (no String, no allocation).
struct DomainTable {
    private var arena: [UInt8] = []
    private var offsets: [UInt32] = []
    private var lengths: [UInt8] = []
    /// First rule of each entry's chain.
    private(set) var heads: [UInt32] = []
    private var slots: [Int32]
    private var mask: Int

    init(capacity: Int = 1024, arenaBytes: Int = 0) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
        arena.reserveCapacity(arenaBytes)
        offsets.reserveCapacity(capacity)
        lengths.reserveCapacity(capacity)
        heads.reserveCapacity(capacity)
    }

    var count: Int { offsets.count }

    /// Bytes held (for memory reports).
    var footprint: Int { arena.capacity + offsets.capacity * 4 + lengths.capacity + heads.capacity * 4 + slots.capacity * 4 }

    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    /// The entry for `name`, or nil.
    @inline(__always)
    func find(_ name: UnsafeRawBufferPointer) -> Int? {
        var i = Self.hash(name) & mask
        while true {
            let entry = slots[i]
            if entry < 0 { return nil }
            if equals(Int(entry), name) { return Int(entry) }
            i = (i + 1) & mask
        }
    }

    @inline(__always)
    private func equals(_ entry: Int, _ name: UnsafeRawBufferPointer) -> Bool {
        guard Int(lengths[entry]) == name.count else { return false }
        let start = Int(offsets[entry])
        return arena.withUnsafeBufferPointer { a in
            for i in 0..<name.count where a[start + i] != name[i] { return false }
            return true
        }
    }

    /// The entry for `name`, created when missing; `head` is then its chain's first rule.
    mutating func insert(_ name: UnsafeRawBufferPointer, head: UInt32) -> (entry: Int, isNew: Bool) {
        if let existing = find(name) { return (existing, false) }
        if (offsets.count + 1) * 2 > slots.count { grow() }
        let entry = offsets.count
        offsets.append(UInt32(arena.count))
        lengths.append(UInt8(name.count))
        arena.append(contentsOf: name)
        heads.append(head)
        place(entry, hash: Self.hash(name))
        return (entry, true)
    }

    mutating func setHead(_ entry: Int, _ head: UInt32) { heads[entry] = head }

    private mutating func place(_ entry: Int, hash: Int) {
        var i = hash & mask
        while slots[i] >= 0 { i = (i + 1) & mask }
        slots[i] = Int32(entry)
    }

    private mutating func grow() {
        let size = slots.count * 2
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
        for entry in 0..<offsets.count {
            let start = Int(offsets[entry])
            let h = arena.withUnsafeBytes { Self.hash(UnsafeRawBufferPointer(rebasing: $0[start..<start + Int(lengths[entry])])) }
            place(entry, hash: h)
        }
    }

    /// The name of an entry (for explain and tests).
    func name(_ entry: Int) -> String {
        let start = Int(offsets[entry])
        return String(decoding: arena[start..<start + Int(lengths[entry])], as: UTF8.self)
    }
}
