import DNS
import Pipeline
import RelayCore

/// The queries a worker has sent upstream and not yet answered, with their deadlines.
///
/// Fixed capacity, allocated once. Each entry keeps a copy of the query (with the upstream ID in
/// it): it is what a retry sends, what an answer's question is checked against (RFC 5452), and
/// where a SERVFAIL is built in place. Entries are found by upstream ID through a 65,536-slot
/// index, and kept in a doubly linked list in deadline order: every try waits the same timeout,
/// so appending keeps the list sorted, and removal is O(1).
final class InFlightTable {
    struct Entry {
        var inUse = false
        var upstreamID: UInt16 = 0
        var clientID: UInt16 = 0
        var client = Endpoint(address: .anyV4, port: 0)
        var originalDestination = Endpoint(address: .anyV4, port: 0)
        var server = Endpoint(address: .anyV4, port: 0)
        /// Which configured server this try went to (mode servers).
        var serverIndex = 0
        /// The upstream socket the try left from; an answer must arrive on it.
        var upstreamFD: Int32 = -1
        var queryLength = 0
        var questionEnd = 0
        var hasEDNS = false
        /// The client's UDP payload size (512 without EDNS); answers longer go out as TC=1.
        var clientPayloadSize = 512
        /// How the answer gets back: UDP, or the client's TCP connection.
        var reply = ReplyPath.udp
        /// The upstream TCP connection this try went out on, or -1 for a UDP try.
        var upstreamConnection: Int32 = -1
        /// A UDP answer came back truncated and the query was asked again over TCP (once).
        var retriedOverTCP = false
        /// For a `$dnsrewrite` alias: the length of the client's header and question, kept at
        /// `aliasOffset` in the buffer while the query for the target is in flight; 0 otherwise.
        var aliasQuestionEnd = 0
        /// Cache key parts (DO/CD bits; the server and clients part) and whether the answer may be
        /// kept (not for aliases, whose answer depends on a rule).
        var cacheFlags: UInt8 = 0
        var cacheKey = CacheKey(server: Endpoint(address: .anyV4, port: 0))
        var cacheable = true
        /// What the current try's server learns of the client (`upstream.client_identity`), and
        /// whether the try left from the client's address (`source`; false when it fell back to
        /// this host's own).
        var identity = Forward.Identity.none
        var leftFromClient = false
        /// `subnet`: the stored query carries an ECS option the relay put in (with `subnetBits`
        /// of the client's address), in an OPT record the relay added itself (`optAdded`: the
        /// client sent none, so the answer's OPT record is removed), or the client's own ECS
        /// was kept (`keep_client_subnet`).
        var subnetAdded = false
        var subnetBits: UInt8 = 0
        var optAdded = false
        var subnetKept = false
        /// A prefetch: the answer refills the cache and goes to nobody.
        var prefetch = false
        /// SVCB/HTTPS address hints to take out of the answer (`Forward.stripHints`).
        var stripHints: UInt8 = 0
        /// For the query log: when the query arrived (monotonic ns) and the rule that let it through.
        var receivedAt: UInt64 = 0
        var rule = RuleOrigin.none
        var deadline: UInt64 = 0
        var previous: Int32 = -1
        var next: Int32 = -1
        var nextFree: Int32 = -1
    }

    /// Where an alias entry keeps the client's header and question (at most 12 + 255 + 4 bytes;
    /// the query for the target, before it, is at most as long plus an OPT record).
    static let aliasOffset = 2048

    let capacity: Int
    /// Largest query kept (UDP queries longer than this are refused before they get here).
    let maxQueryLength: Int
    private var entries: [Entry]
    private let buffers: UnsafeMutableRawPointer
    private var byID: [Int32]
    private var freeHead: Int32 = 0
    private var oldest: Int32 = -1
    private var newest: Int32 = -1
    private(set) var count = 0

    init(capacity: Int, maxQueryLength: Int) {
        self.capacity = capacity
        self.maxQueryLength = maxQueryLength
        entries = [Entry](repeating: Entry(), count: capacity)
        for i in 0..<capacity { entries[i].nextFree = i + 1 < capacity ? Int32(i + 1) : -1 }
        buffers = .allocate(byteCount: capacity * maxQueryLength, alignment: 16)
        byID = [Int32](repeating: -1, count: 65536)
    }

    deinit { buffers.deallocate() }

    var isFull: Bool { freeHead < 0 }
    var isEmpty: Bool { count == 0 }

    /// Takes a free entry and gives it an unused upstream ID drawn from `random`; nil when full.
    @inline(__always)
    func allocate(random: RandomIDs) -> Int? {
        guard freeHead >= 0 else { return nil }
        let index = Int(freeHead)
        freeHead = entries[index].nextFree
        entries[index].inUse = true
        assignID(index, random: random)
        count += 1
        return index
    }

    /// Gives entry `index` a new unused random ID (a retry gets a fresh one, RFC 5452 §9.2).
    @inline(__always)
    func assignID(_ index: Int, random: RandomIDs) {
        let old = Int(entries[index].upstreamID)
        if byID[old] == Int32(index) { byID[old] = -1 }
        var id = random.nextID()
        while byID[Int(id)] >= 0 { id = random.nextID() }  // at most capacity of 65,536 taken
        byID[Int(id)] = Int32(index)
        entries[index].upstreamID = id
    }

    /// Frees an entry.
    @inline(__always)
    func release(_ index: Int) {
        unlink(index)
        if byID[Int(entries[index].upstreamID)] == Int32(index) { byID[Int(entries[index].upstreamID)] = -1 }
        entries[index].inUse = false
        entries[index].upstreamID = 0
        entries[index].nextFree = freeHead
        freeHead = Int32(index)
        count -= 1
    }

    /// The entry waiting for an answer with this upstream ID.
    @inline(__always)
    func lookup(id: UInt16) -> Int? {
        let index = byID[Int(id)]
        return index >= 0 ? Int(index) : nil
    }

    @inline(__always)
    subscript(index: Int) -> Entry {
        get { entries[index] }
        _modify { yield &entries[index] }
    }

    /// The stored query of an entry (its full buffer; the query is its first `queryLength` bytes).
    @inline(__always)
    func buffer(_ index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: buffers + index * maxQueryLength, count: maxQueryLength)
    }

    @inline(__always)
    func query(_ index: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: buffers + index * maxQueryLength, count: entries[index].queryLength)
    }

    /// Sets an entry's deadline and moves it to the end of the deadline list.
    @inline(__always)
    func schedule(_ index: Int, deadline: UInt64) {
        unlink(index)
        entries[index].deadline = deadline
        entries[index].previous = newest
        entries[index].next = -1
        if newest >= 0 { entries[Int(newest)].next = Int32(index) } else { oldest = Int32(index) }
        newest = Int32(index)
    }

    /// Calls `body` with every entry waiting for an answer, earliest deadline first.
    func forEachScheduled(_ body: (Int) -> Void) {
        var index = oldest
        while index >= 0 {
            body(Int(index))
            index = entries[Int(index)].next
        }
    }

    /// The entry with the earliest deadline.
    var earliest: Int? { oldest >= 0 ? Int(oldest) : nil }

    private func unlink(_ index: Int) {
        let previous = entries[index].previous
        let next = entries[index].next
        let linked = previous >= 0 || next >= 0 || oldest == Int32(index)
        guard linked else { return }
        if previous >= 0 { entries[Int(previous)].next = next } else { oldest = next }
        if next >= 0 { entries[Int(next)].previous = previous } else { newest = previous }
        entries[index].previous = -1
        entries[index].next = -1
    }
}

/// Where upstream IDs come from: the worker's strong random source in production,
/// a scripted sequence in tests.
protocol RandomIDs: AnyObject {
    func nextID() -> UInt16
}
