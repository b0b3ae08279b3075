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

    @inline(__always)
    package func commit() {
        head.add(1, ordering: .releasing)
    }

    /// Records waiting.
    package var waiting: Int { head.load(ordering: .acquiring) - tail.load(ordering: .relaxed) }

    /// Hands every record waiting to `body`, in order, as at most two runs of consecutive slots
    /// (the ring wraps): the records, their names (slot i's at `names + i * maxName`) and how
    /// many; then frees their slots. Runs let the writer look ahead within a batch.
    func drain(_ body: (UnsafePointer<QueryLogRecord>, UnsafeRawPointer, Int) -> Void) -> Int {
        let t = tail.load(ordering: .relaxed)
        let h = head.load(ordering: .acquiring)
        var i = t
        while i < h {
            let slot = i & (capacity - 1)
            let run = min(h - i, capacity - slot)
            body(records + slot, names + slot * QueryLogRecord.maxName, run)
            i += run
        }
        tail.store(h, ordering: .releasing)
        return h - t
    }
}
