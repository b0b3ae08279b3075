import RelayCore
import Synchronization

/// What a worker records of one dnstap event: everything but the DNS message, fixed size and
/// free of references, so it is copied into the ring as bytes. Times are monotonic (the writer
/// turns them into wall-clock time once per drain, so a worker reads no extra clock).
public struct DnstapEvent: Sendable {
    public var kind: DnstapMessage.Kind
    public var transport: DnstapMessage.Transport
    /// `Policy.Action` raw value; 0: no policy (the relay did not decide this answer).
    public var policyAction: UInt8
    /// False for forwarder messages from the shared upstream sockets: they are bound to the
    /// wildcard address, and the kernel picks the source per packet (`query_address` is left out).
    public var hasQueryAddress: Bool
    /// The deciding rule (`filters.lists` index, `BuiltinRule.list` for bypass answers, `.max`:
    /// none) and its line.
    public var ruleList: UInt16
    public var ruleLine: UInt32
    /// Client messages: the client and the address it asked. Forwarder messages: the relay's side
    /// (see `hasQueryAddress`) and the upstream.
    public var queryAddress: Endpoint
    public var responseAddress: Endpoint
    /// Monotonic ns; `responseTime` 0 for queries.
    public var queryTime: UInt64
    public var responseTime: UInt64

    public init(kind: DnstapMessage.Kind, transport: DnstapMessage.Transport, queryAddress: Endpoint, responseAddress: Endpoint,
                queryTime: UInt64, responseTime: UInt64 = 0, hasQueryAddress: Bool = true, policyAction: UInt8 = 0,
                ruleList: UInt16 = .max, ruleLine: UInt32 = 0) {
        self.kind = kind
        self.transport = transport
        self.policyAction = policyAction
        self.hasQueryAddress = hasQueryAddress
        self.ruleList = ruleList
        self.ruleLine = ruleLine
        self.queryAddress = queryAddress
        self.responseAddress = responseAddress
        self.queryTime = queryTime
        self.responseTime = responseTime
    }
}

/// A bounded single-producer, single-consumer byte ring of dnstap events, each a `DnstapEvent`
/// followed by its DNS message: the worker that owns it pushes, the dnstap writer thread drains.
/// Variable-length entries (a 40-byte answer and a 4 KiB TCP answer take what they need) in one
/// allocation made at start; a full ring refuses the event and counts it, so that DNS never waits
/// for dnstap.
///
/// An entry is a 4-byte size (0: the rest of the ring is unused, go to its start), 4 bytes of
/// message length, the event, the message, padded to 8 bytes.
public final class DnstapRing: @unchecked Sendable {
    /// Bytes; a power of two.
    public let capacity: Int
    /// Which `DnstapMessage.Kind`s the relay emits (bit `kind.rawValue`).
    private let kinds: UInt64
    private let bytes: UnsafeMutableRawPointer
    /// Byte positions: next written by the producer, next read by the consumer. Both only grow.
    private let head = Atomic<Int>(0)
    private let tail = Atomic<Int>(0)
    /// Events refused because the ring was full or the message too large (producer side).
    public let dropped = Atomic<Int>(0)
    /// The consumer's position as the producer last read it: the producer reads `tail` again
    /// only when this says the ring is full (its cache line then moves between the cores once per
    /// drain, not once per event). Producer side only.
    private var knownTail = 0

    static let entryHeader = 8
    static let eventSize = (MemoryLayout<DnstapEvent>.size + 7) & ~7

    /// A ring of at least `capacity` bytes (rounded up to a power of two, at least 512 KiB: a
    /// quarter of it holds the largest TCP message) for the kinds in `kinds`.
    public init(capacity: Int, kinds: Set<DnstapMessage.Kind>) {
        var size = 512 << 10
        while size < capacity { size <<= 1 }
        self.capacity = size
        self.kinds = kinds.reduce(0) { $0 | 1 << $1.rawValue }
        bytes = .allocate(byteCount: size, alignment: 8)
    }

    deinit {
        bytes.deallocate()
        groupOffsets.deallocate()
        groupEvents.deallocate()
    }

    /// Whether events of `kind` are wanted: the worker asks before it gathers one.
    @inline(__always)
    public func wants(_ kind: DnstapMessage.Kind) -> Bool { kinds & (1 << kind.rawValue) != 0 }

    /// The largest message an entry carries: a quarter of the ring, so that a large one cannot
    /// starve the small ones (over TCP an answer may reach 64 KiB).
    public var maxMessage: Int { capacity / 4 - Self.entryHeader - Self.eventSize }

    /// Copies the event and its message in; false (counted in `dropped`) when there is no room.
    @inline(__always)
    @discardableResult
    public func push(_ event: DnstapEvent, message: UnsafeRawBufferPointer) -> Bool {
        guard message.count <= maxMessage else {
            dropped.add(1, ordering: .relaxed)
            return false
        }
        let size = (Self.entryHeader + Self.eventSize + message.count + 7) & ~7
        let h = head.load(ordering: .relaxed)
        let offset = h & (capacity - 1)
        // An entry never wraps: when it does not fit before the end, the end is skipped.
        let skip = capacity - offset < size ? capacity - offset : 0
        if capacity - (h - knownTail) < skip + size {
            knownTail = tail.load(ordering: .acquiring)
            guard capacity - (h - knownTail) >= skip + size else {
                dropped.add(1, ordering: .relaxed)
                return false
            }
        }
        if skip > 0 { bytes.storeBytes(of: UInt32(0), toByteOffset: offset, as: UInt32.self) }
        let entry = bytes + (offset + skip) & (capacity - 1)
        entry.storeBytes(of: UInt32(size), as: UInt32.self)
        entry.storeBytes(of: UInt32(message.count), toByteOffset: 4, as: UInt32.self)
        entry.storeBytes(of: event, toByteOffset: Self.entryHeader, as: DnstapEvent.self)
        if let source = message.baseAddress, !message.isEmpty {
            (entry + Self.entryHeader + Self.eventSize).copyMemory(from: source, byteCount: message.count)
        }
        head.store(h + skip + size, ordering: .releasing)
        return true
    }

    /// Bytes waiting (for tests and the writer's idle check).
    public var waiting: Int { head.load(ordering: .acquiring) - tail.load(ordering: .relaxed) }

    /// Entries handed over together: `lookahead` sees a group's events before `body` sees any.
    public static let group = 64
    /// Where the entries of the group being drained start, and their events (consumer side only).
    private let groupOffsets = UnsafeMutablePointer<Int>.allocate(capacity: group)
    private let groupEvents = UnsafeMutablePointer<DnstapEvent>.allocate(capacity: group)

    /// Hands every event waiting now to `body`, in order, then frees their room. The event and
    /// message are valid during the call only. Consumer side; the number of events.
    ///
    /// Events go in groups of up to 64, and `lookahead` sees a group's events before `body` sees
    /// the first: the writer starts the loads the bodies will need (rule texts, each a cache miss
    /// under a blocked-heavy load) so that they overlap instead of stalling one at a time.
    @discardableResult
    public func drain(lookahead: (UnsafeBufferPointer<DnstapEvent>) -> Void = { _ in },
                      _ body: (DnstapEvent, UnsafeRawBufferPointer) -> Void) -> Int {
        var t = tail.load(ordering: .relaxed)
        let end = head.load(ordering: .acquiring)
        var count = 0
        while t < end {
            // The next group's entries, stepping over the skipped end of the ring.
            var n = 0
            while t < end && n < Self.group {
                let offset = t & (capacity - 1)
                let size = Int(bytes.load(fromByteOffset: offset, as: UInt32.self))
                if size == 0 {
                    t += capacity - offset
                    continue
                }
                groupOffsets[n] = offset
                (groupEvents + n).initialize(to: bytes.load(fromByteOffset: offset + Self.entryHeader, as: DnstapEvent.self))
                n += 1
                t += size
            }
            lookahead(UnsafeBufferPointer(start: groupEvents, count: n))
            for i in 0..<n {
                let entry = UnsafeRawPointer(bytes + groupOffsets[i])
                let length = Int(entry.load(fromByteOffset: 4, as: UInt32.self))
                body(groupEvents[i], UnsafeRawBufferPointer(start: entry + Self.entryHeader + Self.eventSize, count: length))
            }
            count += n
        }
        tail.store(t, ordering: .releasing)
        return count
    }
}
