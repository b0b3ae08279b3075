import Glibc
import Synchronization

/// A bounded single-producer, single-consumer queue of log records: the worker that owns it
/// pushes, the writer thread pops. Records and their names live in memory allocated once; a full
/// ring refuses the record (the worker counts it as dropped) so that DNS never waits for the log.
package final class QueryLogRing: @unchecked Sendable {
    package let capacity: Int
    private let records: UnsafeMutablePointer<QueryLogRecord>
    private let names: UnsafeMutableRawPointer
    /// Next slot the producer writes; next slot the consumer reads. Both only grow.
    private let head = Atomic<Int>(0)
    private let tail = Atomic<Int>(0)
    /// Records refused because the ring was full (producer side; read by the writer).
    package let dropped = Atomic<Int>(0)

    // The producer's wall clock: the offset of CLOCK_REALTIME from CLOCK_MONOTONIC (µs), read
    // again every `wallClockCheck` ns, so that a record costs one clock read, not two.
    private var wallOffset: UInt64 = 0
    private var wallOffsetUntil: UInt64 = 0
    /// How often the offset is read again: a step of the wall clock (NTP setting the time on a
    /// router without a clock battery) reaches the log within this, a drift of a few ppm is nothing.
    static let wallClockCheck: UInt64 = 100_000_000

    init(capacity: Int) {
        var size = 64
        while size < capacity { size <<= 1 }
        self.capacity = size
        records = .allocate(capacity: size)
        records.initialize(repeating: QueryLogRecord(), count: size)
        names = .allocate(byteCount: size * QueryLogRecord.maxName, alignment: 8)
    }

    deinit {
        records.deinitialize(count: capacity)
        records.deallocate()
        names.deallocate()
    }

    /// The next free slot and its name buffer, or nil when full (counted). Call `commit()` once
    /// the record is filled.
    @inline(__always)
    package func reserve() -> (record: UnsafeMutablePointer<QueryLogRecord>, name: UnsafeMutableRawBufferPointer)? {
        let h = head.load(ordering: .relaxed)
        guard h - tail.load(ordering: .acquiring) < capacity else {
            dropped.add(1, ordering: .relaxed)
            return nil
        }
        let slot = h & (capacity - 1)
        return (records + slot, UnsafeMutableRawBufferPointer(start: names + slot * QueryLogRecord.maxName, count: QueryLogRecord.maxName))
    }

    /// The wall-clock time (µs since the epoch) at monotonic time `monotonic` (ns). Producer only.
    @inline(__always)
    func wallMicros(atMonotonic monotonic: UInt64) -> UInt64 {
        if monotonic >= wallOffsetUntil {
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            let wall = UInt64(ts.tv_sec) &* 1_000_000 &+ UInt64(ts.tv_nsec) / 1000
            wallOffset = wall &- monotonic / 1000
            wallOffsetUntil = monotonic &+ Self.wallClockCheck
        }
        return monotonic / 1000 &+ wallOffset
    }

    @inline(__always)
    package func commit() {
        head.add(1, ordering: .releasing)
    }

    /// Records waiting.
    package var waiting: Int { head.load(ordering: .acquiring) - tail.load(ordering: .relaxed) }

    /// The records waiting now, by sequence number. Read them with `record(_:)` and `name(_:)`,
    /// then free their slots with `release(upTo:)`; the producer does not touch them meanwhile.
    func waitingRecords() -> Range<Int> {
        tail.load(ordering: .relaxed)..<head.load(ordering: .acquiring)
    }

    /// The record with this sequence number (one of `waitingRecords()`).
    @inline(__always)
    func record(_ sequence: Int) -> UnsafePointer<QueryLogRecord> {
        UnsafePointer(records + (sequence & (capacity - 1)))
    }

    /// Its name's bytes.
    @inline(__always)
    func name(_ sequence: Int) -> UnsafeRawBufferPointer {
        let slot = sequence & (capacity - 1)
        return UnsafeRawBufferPointer(start: names + slot * QueryLogRecord.maxName, count: Int(records[slot].nameLength))
    }

    /// Frees the slots of every record before `end` (a `waitingRecords()` upper bound).
    func release(upTo end: Int) {
        tail.store(end, ordering: .releasing)
    }
}
