/// Names the builder's fast path read, held back in groups of `capacity` so that their table
/// slots are fetched together (`DomainTable.touch`) before each is inserted: one line's cache
/// miss then overlaps the next fifteen's instead of waiting its turn. Loading a million-rule
/// list spent two thirds of its time on those misses.
struct InsertBatch {
    static let capacity = 16
    static let nameBytes = 256

    struct Item {
        var length: Int
        var scope: DomainScope
        var line: Int
    }

    private let storage: UnsafeMutableRawBufferPointer
    private let slots: UnsafeMutableBufferPointer<Int>
    private(set) var items: [Item] = []

    init() {
        storage = .allocate(byteCount: Self.capacity * Self.nameBytes, alignment: 16)
        slots = .allocate(capacity: Self.capacity)
        items.reserveCapacity(Self.capacity)
    }

    /// Frees the names' storage; the batch is not used after.
    func deallocate() {
        storage.deallocate()
        slots.deallocate()
    }

    /// Room for one table slot per name (`DomainTable.fetch`).
    func withSlots(_ body: (UnsafeMutableBufferPointer<Int>) -> Void) { body(slots) }

    var isFull: Bool { items.count == Self.capacity }

    /// Where the next name is written (at most `nameBytes`).
    var nextName: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: storage[items.count * Self.nameBytes..<(items.count + 1) * Self.nameBytes])
    }

    /// Keeps the name just written at `nextName`.
    mutating func commit(length: Int, scope: DomainScope, line: Int) {
        items.append(Item(length: length, scope: scope, line: line))
    }

    /// The name of item `index`.
    func name(_ index: Int) -> UnsafeRawBufferPointer {
        let start = index * Self.nameBytes
        return UnsafeRawBufferPointer(rebasing: storage[start..<start + items[index].length])
    }

    mutating func removeAll() { items.removeAll(keepingCapacity: true) }
}
