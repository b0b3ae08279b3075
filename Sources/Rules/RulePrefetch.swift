/// Brings into the cache, for a whole batch of received queries at once, the rule-table entries
/// and label bytes their names will be looked up in: a query's lookup then finds them there
/// instead of waiting on memory for each label in turn.
///
/// In a relay under load the kernel's networking evicts the table between batches, and a lookup
/// walks a name's labels one after another (each probe needs the previous label's entry), so
/// each label costs a cache miss in series: two or three per query, a third of the relay's own
/// time per blocked query. Here every name's slots are worked out from its text alone (the
/// table's hashes follow from the labels, `DomainTable.hash`), then all are read in one tight
/// loop, so that the misses of the whole batch are in flight together; a second loop does the
/// same for the label bytes of the entries that match each probe's label length and hash tag. The lookup itself is unchanged: this
/// only warms what it will read, and a slot it guessed wrong (the name sits a slot further on,
/// or is not in the table) costs one wasted load.
///
/// Owned by one worker; its buffer is allocated once.
public final class RulePrefetch {
    /// Deepest labels of a name prefetched (names rarely have more; deeper ones are looked up cold).
    static let levelsPerName = 8
    private let slots: UnsafeMutableBufferPointer<Int>
    private let batch: Int

    /// For batches of up to `batch` queries.
    public init(batch: Int) {
        self.batch = max(1, batch)
        slots = .allocate(capacity: self.batch * Self.levelsPerName)
    }

    deinit { slots.deallocate() }

    /// Fetches what looking up the question names of `count` messages will read: `message(i)`
    /// is the i-th DNS message in wire form, header first. A malformed or compressed name is
    /// skipped (the lookup rejects or handles it as before); past `batch` messages, the rest are.
    @inline(__always)
    public func fetch(_ rules: RuleSet, count: Int, message: (Int) -> UnsafeRawBufferPointer) {
        guard !rules.isEmpty else { return }
        var noted = 0
        for i in 0..<min(count, batch) {
            noted += rules.table.slots(ofQuestionIn: message(i), into: UnsafeMutableBufferPointer(rebasing: slots[noted..<noted + Self.levelsPerName]))
        }
        // Every slot, then the label bytes the entries found there point at.
        if noted > 0 { rules.table.fetch(probes: UnsafeBufferPointer(rebasing: slots[0..<noted])) }
    }
}
