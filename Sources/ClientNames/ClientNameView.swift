import RelayCore

/// One thread's view of the client names (the query log's writer): the files' names, taken
/// again when the table's version changes, and reverse-lookup results kept in a bounded table of
/// its own. Names are bytes in one arena, so that a line's name is appended without a String
/// or a reference count. The files' names are in an open-addressing table of their own (a mixed
/// 128-bit key, linear probing: a few ns), the lookups' in a direct-mapped cache of recent
/// clients in front of a dictionary: Swift's dictionaries hash with SipHash, and with 1,000
/// clients in turn that cost 0.15 µs a line (querylog-bench).
public final class ClientNameView {
    private let directory: ClientNameDirectory
    private var version = -1
    /// A name's place in `arena`.
    private struct Span { var offset: UInt32, length: UInt32 }
    /// The files' names: keys and spans at the same index, `fileMask + 1` slots, half full at most.
    private var fileKeys: UnsafeMutablePointer<(UInt64, UInt64)>
    private var fileSpans: UnsafeMutablePointer<Span>
    private var fileMask = 0
    private var table = ClientNameTable.empty
    private enum Lookup { case pending(since: UInt32), named(String, Span, until: UInt32), unnamed(until: UInt32) }
    private var lookups: [IPAddress: Lookup] = [:]
    /// Insertion order of `lookups`, for evicting the oldest when it is full.
    private var order: [IPAddress] = []
    private var orderStart = 0
    /// The names' bytes, back to back; rebuilt when the table changes or it passes `maxArena`.
    private var arena: UnsafeMutablePointer<UInt8>
    private var arenaCount = 0
    private var arenaCapacity: Int
    static let maxArena = 4 << 20
    /// Recent clients: address key, name span (length 0: no name), until when it holds.
    private struct Slot { var k0: UInt64 = 0, k1: UInt64 = 0, span = Span(offset: 0, length: 0), until: UInt32 = 0 }
    private let recent: UnsafeMutablePointer<Slot>
    static let recentSlots = 4096
    /// Reverse lookups remembered (names and "no name" alike); older ones are forgotten first.
    public static let maxLookups = 4096
    /// A lookup asked for and not answered within this many seconds is asked again.
    static let retryAfter: UInt32 = 60

    public init(directory: ClientNameDirectory) {
        self.directory = directory
        arenaCapacity = 1 << 16
        arena = .allocate(capacity: arenaCapacity)
        recent = .allocate(capacity: Self.recentSlots)
        recent.initialize(repeating: Slot(), count: Self.recentSlots)
        fileKeys = .allocate(capacity: 1)
        fileKeys.initialize(to: Self.emptyKey)
        fileSpans = .allocate(capacity: 1)
    }

    deinit {
        arena.deallocate()
        recent.deallocate()
        fileKeys.deallocate()
        fileSpans.deallocate()
    }

    /// No address has this key (a v4 key's high word is 0x0000ffff_00000000, and this low word
    /// is no IPv4 address with it; a v6 address with both words all ones is a broadcast-like
    /// multicast no client sends from).
    static let emptyKey: (UInt64, UInt64) = (.max, .max)

    /// Once per batch: takes a new table and the lookups' results.
    public func refresh(now: UInt32) {
        let current = directory.version
        if current != version {
            version = current
            table = directory.table
            rebuildArena()
        }
        guard directory.reverseLookups else { return }
        for result in directory.takeResults() {
            if let name = result.name {
                if arenaCount + name.utf8.count > Self.maxArena { rebuildArena() }
                remember(result.address, .named(name, intern(name), until: result.expires))
            } else {
                remember(result.address, .unnamed(until: result.expires))
            }
            recent[Int(truncatingIfNeeded: Self.mix(Self.key(result.address)) >> 52)].until = 0
        }
    }

    /// The client's name as bytes (valid until the next call of `refresh`), or nil; asks for a
    /// reverse lookup of an address nothing names yet.
    @inline(__always)
    public func name(for address: IPAddress, now: UInt32) -> UnsafeRawBufferPointer? {
        let key = Self.key(address)
        let mixed = Self.mix(key)
        var i = Int(truncatingIfNeeded: mixed) & fileMask
        while true {
            let k = fileKeys[i]
            if k == key { return bytes(fileSpans[i]) }
            if k == Self.emptyKey { break }
            i = (i + 1) & fileMask
        }
        guard directory.reverseLookups else { return nil }
        let slot = recent + Int(truncatingIfNeeded: mixed >> 52)
        if slot.pointee.k0 == key.0, slot.pointee.k1 == key.1, slot.pointee.until > now { return bytes(slot.pointee.span) }
        return lookUp(address, key: key, slot: slot, now: now)
    }

    private func lookUp(_ address: IPAddress, key: (UInt64, UInt64), slot: UnsafeMutablePointer<Slot>, now: UInt32) -> UnsafeRawBufferPointer? {
        var span = Span(offset: 0, length: 0), until = UInt32.max
        switch lookups[address] {
        case .named(_, let s, let u) where u > now: (span, until) = (s, u)
        case .unnamed(let u) where u > now: until = u
        case .pending(let since) where now &- since < Self.retryAfter:
            return nil  // not kept: the answer shows as soon as it comes
        default:
            remember(address, .pending(since: now))
            directory.ask(address)
            return nil
        }
        slot.pointee = Slot(k0: key.0, k1: key.1, span: span, until: until)
        return bytes(span)
    }

    @inline(__always)
    private func bytes(_ span: Span) -> UnsafeRawBufferPointer? {
        span.length == 0 ? nil : UnsafeRawBufferPointer(start: arena + Int(span.offset), count: Int(span.length))
    }

    /// A v4 address cannot be mistaken for a v6 one: its key has bit 32 of the low word set and a
    /// zero high word, which no v6 key with the same low word has unless it is ::1:a.b.c.d.
    @inline(__always)
    static func key(_ address: IPAddress) -> (UInt64, UInt64) {
        switch address {
        case .v4(let v4): return (0x0000_ffff_0000_0000, UInt64(v4.rawValue))
        case .v6(let v6): return (v6.high, v6.low)
        }
    }

    /// The key mixed to 64 bits (splitmix64's finalizer over both words; Swift's `>>` binds
    /// tighter than `&*`, hence the parentheses): low bits index the files' table, the top 12
    /// the recent cache.
    @inline(__always)
    static func mix(_ key: (UInt64, UInt64)) -> UInt64 {
        var x = key.0 &* 0x9E37_79B9_7F4A_7C15 ^ key.1
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        return x ^ (x >> 31)
    }

    // MARK: The arena

    private func intern(_ name: String) -> Span {
        let count = name.utf8.count
        if arenaCount + count > arenaCapacity {
            var capacity = arenaCapacity
            while arenaCount + count > capacity { capacity *= 2 }
            let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
            grown.update(from: arena, count: arenaCount)
            arena.deallocate()
            arena = grown
            arenaCapacity = capacity
        }
        let offset = arenaCount
        var name = name
        name.withUTF8 { utf8 in (arena + offset).update(from: utf8.baseAddress!, count: count) }
        arenaCount += count
        return Span(offset: UInt32(offset), length: UInt32(count))
    }

    /// The files' names and the live lookups' names, interned afresh; the recent cache emptied.
    private func rebuildArena() {
        arenaCount = 0
        var interned: [String: Span] = [:]
        func span(_ name: String) -> Span {
            if let known = interned[name] { return known }
            let new = intern(name)
            interned[name] = new
            return new
        }
        let entries = table.entries
        var capacity = 2
        while capacity < entries.count * 2 { capacity *= 2 }
        fileKeys.deallocate()
        fileSpans.deallocate()
        fileKeys = .allocate(capacity: capacity)
        fileKeys.initialize(repeating: Self.emptyKey, count: capacity)
        fileSpans = .allocate(capacity: capacity)
        fileSpans.initialize(repeating: Span(offset: 0, length: 0), count: capacity)
        fileMask = capacity - 1
        for (address, entry) in entries {
            let key = Self.key(address)
            var i = Int(truncatingIfNeeded: Self.mix(key)) & fileMask
            while fileKeys[i] != Self.emptyKey { i = (i + 1) & fileMask }
            fileKeys[i] = key
            fileSpans[i] = span(entry.name)
        }
        for (address, lookup) in lookups {
            if case .named(let name, _, let until) = lookup { lookups[address] = .named(name, span(name), until: until) }
        }
        for i in 0..<Self.recentSlots { recent[i].until = 0 }
    }

    private func remember(_ address: IPAddress, _ lookup: Lookup) {
        if lookups.updateValue(lookup, forKey: address) == nil {
            order.append(address)
            while lookups.count > Self.maxLookups, orderStart < order.count {
                lookups.removeValue(forKey: order[orderStart])
                orderStart += 1
            }
            if orderStart > Self.maxLookups {  // compact the order list now and then
                order.removeFirst(orderStart)
                orderStart = 0
            }
        }
    }

    /// Lookups remembered (for tests: bounded whatever the flood).
    public var rememberedLookups: Int { lookups.count }
}
