import Glibc

/// Names → rules, as a tree of labels kept in one hash table: each entry is one label under its
/// parent entry (`test`, then `example` under it, then `ads` under that), so a name's suffixes
/// share their entries and a lookup walks the query's labels from the right, one probe each,
/// stopping at the first label no rule goes below.
///
/// Built for millions of names in little memory and few cache misses: an entry is 16 bytes and
/// holds its parent, its label's place in one byte arena, a hash tag, and the name's first rule
/// inline (most names have exactly one), so a probe that finds its name has its rule in the same
/// cache line. Names with more rules keep them in `overflow`, chained in load order. The entries
/// sit in one anonymous mapping advised onto huge pages: a million-name table spans 20 MB, and
/// with 4 KiB pages nearly every probe would also miss the TLB.
///
/// Built by one thread (`RuleSetBuilder`), then read-only: workers share it without locks.
final class DomainTable: @unchecked Sendable {
    /// One label of one name, 16 bytes.
    struct Entry {
        /// The entry of the label to the right, or `root`.
        var parent: UInt32
        /// Where the label sits in `arena`: offset << 6 | length (1…63). Zero: an empty slot.
        var label: UInt32
        /// The name's rule, a chain of them, or none (a name only longer names go through).
        var rule: CompactRule
    }

    /// A rule in 8 bytes: line (or, for the few rules that carry more, the index of their
    /// `Extras`, which hold the line), list, scope, action, `$important`.
    struct CompactRule: Equatable {
        /// The line, the `Extras` index (`hasExtra`) or, in a `chain` entry, the first overflow rule.
        var payload: UInt32
        var list: UInt16
        /// scope (bits 0–1) | action (bits 2–4, `RuleSet.Code`, or `none`/`chain`) | important (5) | hasExtra (6).
        var flags: UInt8
        /// The entry's hash tag (8 bits of its hash): a probe that meets another name mostly
        /// learns so here, without reading the arena. Unused in overflow rules.
        var tag: UInt8

        static let none: UInt8 = 6
        static let chain: UInt8 = 7

        init(payload: UInt32, list: UInt16, scope: DomainScope, action: UInt8, important: Bool, hasExtra: Bool) {
            self.payload = payload
            self.list = list
            flags = scope.rawValue | action << 2 | (important ? 0x20 : 0) | (hasExtra ? 0x40 : 0)
            tag = 0
        }

        init(kind: UInt8, payload: UInt32) {
            self.payload = payload
            list = 0
            flags = kind << 2
            tag = 0
        }

        @inline(__always) var action: UInt8 { (flags >> 2) & 7 }
        @inline(__always) var scope: DomainScope { DomainScope(rawValue: flags & 3) ?? .exact }
        @inline(__always) var important: Bool { flags & 0x20 != 0 }
        @inline(__always) var hasExtra: Bool { flags & 0x40 != 0 }
    }

    /// A rule past an entry's first, or a regex rule.
    struct OverflowRule {
        var rule: CompactRule
        /// The next rule for the same name, or .max.
        var next: UInt32
    }

    /// The parent of a top-level label.
    static let root = UInt32.max
    /// Rule ids with this bit set are overflow rules; the others are entries (their inline rule).
    static let overflowBit: UInt32 = 0x8000_0000
    /// Labels' bytes are addressed with 26 bits.
    static let maxArenaBytes = 1 << 26
    /// What `insert` refuses past (`maxArenaBytes`; less in tests).
    private let arenaLimit: Int

    private(set) var entries: UnsafeMutableBufferPointer<Entry>
    private var mappedBytes: Int
    private(set) var arena: [UInt8] = []
    private(set) var overflow: [OverflowRule] = []
    /// Entries in use (names and the suffixes they pass through).
    private(set) var count = 0
    /// Rules held (inline and overflow, regex rules included).
    private(set) var ruleCount = 0
    /// Grow past this many entries (load factor 0.8: linear probing stays short with the tags).
    private var limit: Int

    /// A table for about `names` names whose labels take about `labelBytes` bytes.
    init(names: Int = 16, labelBytes: Int = 0, arenaLimit: Int = DomainTable.maxArenaBytes) {
        self.arenaLimit = min(arenaLimit, Self.maxArenaBytes)
        let capacity = Self.capacity(for: names)
        if let mapped = Self.map(capacity) {
            (entries, mappedBytes) = mapped
        } else {
            // No room for that many: a small table that refuses names once full (the builder
            // reports each line it could not take, and a reload keeps the rules in force).
            (entries, mappedBytes) = Self.map(16) ?? Self.allocate(16)
        }
        limit = entries.count * 4 / 5
        arena.reserveCapacity(labelBytes)
    }

    deinit { Self.unmap(entries, mappedBytes) }

    /// Slots for `names` entries at a load factor of 0.75. Real lists' names also pass through
    /// parents no rule names (measured: 1.3–1.5 entries per rule); such a table grows once.
    private static func capacity(for names: Int) -> Int { max(16, names + names / 3 + 64) }

    /// Zero-filled entries (an empty slot is all zero) in an anonymous mapping, touched only as
    /// they fill; huge pages where the kernel allows them (`madvise` mode: they must be asked for).
    /// Nil when the kernel refuses the memory.
    private static func map(_ capacity: Int) -> (UnsafeMutableBufferPointer<Entry>, Int)? {
        let bytes = (capacity * MemoryLayout<Entry>.stride + 4095) & ~4095
        let address = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let address, address != MAP_FAILED else { return nil }
        if bytes >= 2 << 20 { _ = madvise(address, bytes, MADV_HUGEPAGE) }
        let pointer = address.bindMemory(to: Entry.self, capacity: capacity)
        return (UnsafeMutableBufferPointer(start: pointer, count: capacity), bytes)
    }

    /// From the heap (mapped bytes 0), when not even a small mapping is given.
    private static func allocate(_ capacity: Int) -> (UnsafeMutableBufferPointer<Entry>, Int) {
        let entries = UnsafeMutableBufferPointer<Entry>.allocate(capacity: capacity)
        UnsafeMutableRawBufferPointer(entries).initializeMemory(as: UInt8.self, repeating: 0)
        return (entries, 0)
    }

    private static func unmap(_ entries: UnsafeMutableBufferPointer<Entry>, _ bytes: Int) {
        guard let base = entries.baseAddress else { return }
        if bytes == 0 { entries.deallocate() } else { _ = munmap(UnsafeMutableRawPointer(base), bytes) }
    }

    /// Bytes held (for memory reports).
    var footprint: Int {
        count * MemoryLayout<Entry>.stride * 5 / 4 + arena.capacity + overflow.capacity * MemoryLayout<OverflowRule>.stride
    }

    // MARK: Lookups

    /// Where `fetch` leaves what it read: a load whose value is unused may be dropped.
    private var touched: UInt32 = 0

    /// The hash of the name (suffix) whose parent hashes to `parent` and whose leftmost label is
    /// `label`; the root's is `rootHash`. It follows from the name's text alone, so the slots of
    /// every suffix of a name can be worked out (and fetched into the cache) before any of them is
    /// read (`touch`).
    @inline(__always)
    static func hash(parent: UInt64, _ label: UnsafeRawBufferPointer) -> UInt64 {
        var h = parent ^ 0xcbf2_9ce4_8422_2325
        for b in label { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return finish(h)
    }

    /// MurmurHash3's fmix64: the slot comes from the high bits, the tag from the low.
    @inline(__always)
    private static func finish(_ value: UInt64) -> UInt64 {
        var h = value
        h ^= h >> 33
        h = h &* 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        h = h &* 0xc4ce_b9fe_1a85_ec53
        return h ^ (h >> 33)
    }

    static let rootHash: UInt64 = 0x5bd1_e995_0000_0001

    @inline(__always)
    private func slot(_ hash: UInt64) -> Int { Int(truncatingIfNeeded: hash.multipliedFullWidth(by: UInt64(entries.count)).high) }

    /// The entry for `label` under `parent` (whose name hashes to `parentHash`), and the hash of
    /// the name they spell; entry nil when there is none.
    @inline(__always)
    func child(of parent: UInt32, parentHash: UInt64, _ label: UnsafeRawBufferPointer) -> (entry: UInt32?, hash: UInt64) {
        let h = Self.hash(parent: parentHash, label)
        guard label.count > 0 && label.count < 64 else { return (nil, h) }
        let tag = UInt8(truncatingIfNeeded: h)
        let length = UInt32(label.count)
        var i = slot(h)
        while true {
            let e = entries[i]
            if e.label == 0 { return (nil, h) }
            if e.rule.tag == tag && e.parent == parent && e.label & 63 == length && labelEquals(e.label, label) {
                return (UInt32(i), h)
            }
            i += 1
            if i == entries.count { i = 0 }
        }
    }

    /// The slot where `name`'s own entry is looked for first: worked out from its text alone,
    /// with no table read. `fetch` then loads a batch of them together.
    @inline(__always)
    func firstSlot(of name: UnsafeRawBufferPointer) -> Int {
        var h = Self.rootHash
        var end = name.count
        while end > 0 {
            var start = end
            while start > 0 && name[start - 1] != UInt8(ascii: ".") { start -= 1 }
            h = Self.hash(parent: h, UnsafeRawBufferPointer(rebasing: name[start..<end]))
            end = start - 1
        }
        return slot(h)
    }

    /// Reads the given slots, so that a batch of names has its cache misses in flight together
    /// before each is looked up in turn: the loads are independent and the loop is a few
    /// instructions, so the processor issues them all at once. (Hashing each name between the
    /// loads kept only one or two in flight, and was slower than no fetch at all.)
    @inline(__always)
    func fetch(_ slots: UnsafeBufferPointer<Int>) {
        var sum: UInt32 = 0
        for i in slots { sum &+= entries[i].label }
        touched &+= sum
    }

    /// A probe to prefetch: the first slot, and the label length and tag that tell its entry
    /// apart from the others in the run (`slots(ofQuestionIn:into:)` writes them).
    @inline(__always)
    static func probe(slot: Int, length: Int, tag: UInt8) -> Int { slot << 14 | length << 8 | Int(tag) }

    /// `fetch`, for probes: every first slot, then, in a second loop over entries now cached,
    /// the label bytes of the entry in each run whose length and tag match (what the lookup's
    /// comparison will read).
    @inline(__always)
    func fetch(probes: UnsafeBufferPointer<Int>) {
        var sum: UInt32 = 0
        for p in probes { sum &+= entries[p >> 14].label }
        arena.withUnsafeBufferPointer { a in
            for p in probes {
                var i = p >> 14
                let length = UInt32(p >> 8 & 63)
                let tag = UInt8(truncatingIfNeeded: p)
                for _ in 0..<8 {
                    let e = entries[i]
                    if e.label == 0 { break }
                    if e.rule.tag == tag && e.label & 63 == length {
                        sum &+= UInt32(a[Int(e.label >> 6)])
                        break
                    }
                    i += 1
                    if i == entries.count { i = 0 }
                }
            }
        }
        touched &+= sum
    }

    /// Writes the probe (`probe(slot:length:tag:)`) of each suffix of the question name of
    /// `message` (DNS wire form, the name at offset 12), the shortest first, into `out`; returns
    /// how many (0 for a malformed or compressed name, or one under a top-level label no rule
    /// goes through). The hashes match those of the lower-case text.
    @inline(__always)
    func slots(ofQuestionIn message: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Int>) -> Int {
        guard message.count > 12 else { return 0 }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 128) { starts in
            // Label offsets (each < 256 + 12, so a byte past 12 fits), left to right.
            var labels = 0
            var offset = 12
            while true {
                guard offset < message.count, offset - 12 <= 255 else { return 0 }
                let length = Int(message[offset])
                if length == 0 { break }
                guard length <= 63, offset + 1 + length <= message.count, labels < 128 else { return 0 }
                starts[labels] = UInt8(offset - 12)
                labels += 1
                offset += 1 + length
            }
            var h = Self.rootHash
            var written = 0
            var index = labels - 1
            while index >= 0 && written < out.count {
                let start = 12 + Int(starts[index])
                let length = Int(message[start])
                h = Self.hash(parent: h, lowercasing: UnsafeRawBufferPointer(rebasing: message[start + 1..<start + 1 + length]))
                // A top-level label no rule goes through (a LAN's own suffix, most of the
                // internet's TLDs) ends the lookup at once: nothing deeper is worth a load. Those
                // entries are few and stay cached, so asking costs no miss.
                if written == 0 && !mayHaveTopLevel(hash: h, length: length) { return 0 }
                out[written] = Self.probe(slot: slot(h), length: length, tag: UInt8(truncatingIfNeeded: h))
                written += 1
                index -= 1
            }
            return written
        }
    }

    /// Whether a top-level entry of this hash and label length may exist (tag, parent and
    /// length match; the bytes are not compared: a wrong yes costs only a wasted prefetch).
    @inline(__always)
    private func mayHaveTopLevel(hash: UInt64, length: Int) -> Bool {
        let tag = UInt8(truncatingIfNeeded: hash)
        var i = slot(hash)
        while true {
            let e = entries[i]
            if e.label == 0 { return false }
            if e.rule.tag == tag && e.parent == Self.root && Int(e.label & 63) == length { return true }
            i += 1
            if i == entries.count { i = 0 }
        }
    }

    /// `hash(parent:_:)` of the label's lower-case form.
    @inline(__always)
    static func hash(parent: UInt64, lowercasing label: UnsafeRawBufferPointer) -> UInt64 {
        var h = parent ^ 0xcbf2_9ce4_8422_2325
        for var b in label {
            if b >= 0x41 && b <= 0x5a { b |= 0x20 }
            h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3
        }
        return finish(h)
    }

    @inline(__always)
    private func labelEquals(_ reference: UInt32, _ label: UnsafeRawBufferPointer) -> Bool {
        let start = Int(reference >> 6)
        return arena.withUnsafeBytes { a in memcmp(a.baseAddress! + start, label.baseAddress!, label.count) == 0 }
    }

    /// Calls `body` with each entry the name's suffixes have, longest suffix first, and where
    /// that suffix starts in `name` (lower-case dotted, no trailing dot). No allocation.
    @inline(__always)
    func forEachSuffix(of name: UnsafeRawBufferPointer, _ body: (_ entry: UInt32, _ start: Int) -> Void) {
        // At most 127 labels fit in 253 bytes; a longer text (explain's raw input) stops there.
        withUnsafeTemporaryAllocation(of: (UInt32, Int32).self, capacity: 128) { buffer in
            var depth = 0
            var parent = Self.root
            var parentHash = Self.rootHash
            var end = name.count
            while end > 0 && depth < 128 {
                var start = end
                while start > 0 && name[start - 1] != UInt8(ascii: ".") { start -= 1 }
                let found = child(of: parent, parentHash: parentHash, UnsafeRawBufferPointer(rebasing: name[start..<end]))
                guard let entry = found.entry else { break }
                buffer[depth] = (entry, Int32(start))
                depth += 1
                parent = entry
                parentHash = found.hash
                end = start - 1
            }
            while depth > 0 {
                depth -= 1
                body(buffer[depth].0, Int(buffer[depth].1))
            }
        }
    }

    /// The rule stored under `id` (an entry's inline rule or an overflow rule).
    @inline(__always)
    func rule(_ id: UInt32) -> CompactRule {
        id & Self.overflowBit == 0 ? entries[Int(id)].rule : overflow[Int(id & ~Self.overflowBit)].rule
    }

    /// Calls `body` with the id and rule of each rule of `entry`, in load order.
    @inline(__always)
    func forEachRule(of entry: UInt32, _ body: (UInt32, CompactRule) -> Void) {
        let first = entries[Int(entry)].rule
        switch first.action {
        case CompactRule.none: return
        case CompactRule.chain:
            var index = first.payload
            while index != .max {
                let o = overflow[Int(index)]
                body(index | Self.overflowBit, o.rule)
                index = o.next
            }
        default: body(entry, first)
        }
    }

    /// The name an entry spells (for explain and tests).
    func name(_ entry: UInt32) -> String {
        var labels: [String] = []
        var current = entry
        while current != Self.root {
            let e = entries[Int(current)]
            let start = Int(e.label >> 6)
            labels.append(String(decoding: arena[start..<start + Int(e.label & 63)], as: UTF8.self))
            current = e.parent
        }
        return labels.joined(separator: ".")
    }

    // MARK: Building


    /// Adds `rule` for `name` (lower-case dotted, checked by the caller: labels of 1…63 bytes),
    /// after the rules the name already has. False when the label arena is full.
    func insert(_ name: UnsafeRawBufferPointer, rule: CompactRule) -> Bool {
        var parent = Self.root
        var parentHash = Self.rootHash
        var end = name.count
        while end > 0 {
            var start = end
            while start > 0 && name[start - 1] != UInt8(ascii: ".") { start -= 1 }
            let label = UnsafeRawBufferPointer(rebasing: name[start..<end])
            let found = child(of: parent, parentHash: parentHash, label)
            if let entry = found.entry {
                parent = entry
            } else {
                guard arena.count + label.count <= arenaLimit else { return false }
                if count + 1 > limit {
                    // Every entry moves: walk the name again from its last label.
                    guard grow() else { return false }
                    return insert(name, rule: rule)
                }
                let reference = UInt32(arena.count) << 6 | UInt32(label.count)
                arena.append(contentsOf: label)
                parent = place(Entry(parent: parent, label: reference, rule: CompactRule(kind: CompactRule.none, payload: 0)), hash: found.hash)
            }
            parentHash = found.hash
            end = start - 1
        }
        attach(rule, to: parent)
        return true
    }

    /// A rule that no name holds (a regex rule); its id.
    func addLoose(_ rule: CompactRule) -> UInt32 {
        overflow.append(OverflowRule(rule: rule, next: .max))
        ruleCount += 1
        return UInt32(overflow.count - 1) | Self.overflowBit
    }

    private func attach(_ rule: CompactRule, to entry: UInt32) {
        ruleCount += 1
        var first = entries[Int(entry)].rule
        let tag = first.tag
        switch first.action {
        case CompactRule.none:
            first = rule
        case CompactRule.chain:
            var last = first.payload
            while overflow[Int(last)].next != .max { last = overflow[Int(last)].next }
            overflow.append(OverflowRule(rule: rule, next: .max))
            overflow[Int(last)].next = UInt32(overflow.count - 1)
        default:
            // A second rule: both move to the overflow, the entry points at them.
            overflow.append(OverflowRule(rule: first, next: UInt32(overflow.count + 1)))
            overflow.append(OverflowRule(rule: rule, next: .max))
            first = CompactRule(kind: CompactRule.chain, payload: UInt32(overflow.count - 2))
        }
        first.tag = tag
        entries[Int(entry)].rule = first
    }

    @discardableResult
    private func place(_ entry: Entry, hash: UInt64) -> UInt32 {
        var i = slot(hash)
        while entries[i].label != 0 {
            i += 1
            if i == entries.count { i = 0 }
        }
        var entry = entry
        entry.rule.tag = UInt8(truncatingIfNeeded: hash)
        entries[i] = entry
        count += 1
        return UInt32(i)
    }

    /// Half as many slots again. Slots follow from names alone, so each entry's hash is worked
    /// out from its labels up to the root; parents are renumbered once all have moved. Rare: the
    /// table is sized from the lists' line count before loading.
    /// False when the memory is refused: the table stays as it is, full.
    private func grow() -> Bool {
        let old = entries
        let oldBytes = mappedBytes
        let capacity = max(16, old.count + old.count / 2)
        guard let mapped = Self.map(capacity) else { return false }
        (entries, mappedBytes) = mapped
        limit = capacity * 4 / 5
        count = 0
        var moved = [UInt32](repeating: .max, count: old.count)
        var chain: [UInt32] = []
        for i in 0..<old.count where old[i].label != 0 {
            chain.removeAll(keepingCapacity: true)
            var current = UInt32(i)
            while current != Self.root {
                chain.append(current)
                current = old[Int(current)].parent
            }
            var h = Self.rootHash
            for entry in chain.reversed() {
                let label = old[Int(entry)].label
                let start = Int(label >> 6)
                h = arena.withUnsafeBytes { Self.hash(parent: h, UnsafeRawBufferPointer(rebasing: $0[start..<start + Int(label & 63)])) }
            }
            moved[i] = place(old[i], hash: h)
        }
        for i in 0..<entries.count where entries[i].label != 0 && entries[i].parent != Self.root {
            entries[i].parent = moved[Int(entries[i].parent)]
        }
        Self.unmap(old, oldBytes)
        return true
    }
}
