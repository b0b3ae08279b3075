/// Names → chains of rule indices, built for millions of names in little memory: the names sit
/// in one byte arena, the table is open addressing over 32-bit entry indices, and lookups take a
/// byte slice (no String, no allocation).
struct DomainTable {
    private var arena: [UInt8] = []
    private var offsets: [UInt32] = []
    private var lengths: [UInt8] = []
    /// First rule of each entry's chain.
    private(set) var heads: [UInt32] = []
    /// Open addressing: each slot holds an entry index (low 32 bits, all ones when empty) and
    /// the upper 32 bits of the name's hash, so a probe that hits another name is told apart
    /// without touching the arena (a cache miss saved per collision).
    private var slots: [UInt64]
    private var mask: Int

    init(capacity: Int = 1024, arenaBytes: Int = 0) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [UInt64](repeating: Self.empty, count: size)
        mask = size - 1
        arena.reserveCapacity(arenaBytes)
        offsets.reserveCapacity(capacity)
        lengths.reserveCapacity(capacity)
        heads.reserveCapacity(capacity)
    }

    var count: Int { offsets.count }

    /// Bytes held (for memory reports).
    var footprint: Int { arena.capacity + offsets.capacity * 4 + lengths.capacity + heads.capacity * 4 + slots.capacity * 8 }

    static let empty = UInt64(UInt32.max)

    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h ^ (h >> 29)
    }

    /// The entry for `name`, or nil.
    @inline(__always)
    func find(_ name: UnsafeRawBufferPointer) -> Int? {
        let h = Self.hash(name)
        let tag = h & 0xffff_ffff_0000_0000
        var i = Int(truncatingIfNeeded: h) & mask
        return slots.withUnsafeBufferPointer { slots in
            while true {
                let slot = slots[i]
                if slot == Self.empty { return nil }
                if slot & 0xffff_ffff_0000_0000 == tag {
                    let entry = Int(slot & 0xffff_ffff)
                    if equals(entry, name) { return entry }
                }
                i = (i + 1) & mask
            }
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

    private mutating func place(_ entry: Int, hash: UInt64) {
        var i = Int(truncatingIfNeeded: hash) & mask
        while slots[i] != Self.empty { i = (i + 1) & mask }
        slots[i] = (hash & 0xffff_ffff_0000_0000) | UInt64(entry)
    }

    private mutating func grow() {
        let size = slots.count * 2
        slots = [UInt64](repeating: Self.empty, count: size)
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
