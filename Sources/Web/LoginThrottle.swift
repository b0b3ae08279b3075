/// Slows down guessing: after `free` wrong passwords in a row from one address, that address
/// must wait before its next attempt is even checked, 1 s doubling with each further failure up
/// to `maxDelay` (answered 429 with Retry-After until then). A success clears the address. All
/// addresses together are held to the same rule, so that guessing from many addresses is no
/// faster than from one. Bounded: at most `capacity` addresses are remembered.
struct LoginThrottle {
    private struct Record {
        var failures = 0
        var notBefore: UInt64 = 0
    }

    private var records: [String: Record] = [:]
    private var everyone = Record()
    let free: Int
    let maxDelay: UInt64
    let capacity: Int
    /// The budget for all addresses together: this many failures in a row before everyone waits.
    let globalFree: Int

    init(free: Int = 3, maxDelaySeconds: Int = 60, capacity: Int = 1024, globalFree: Int = 20) {
        self.free = free
        maxDelay = UInt64(maxDelaySeconds) * 1_000_000_000
        self.capacity = capacity
        self.globalFree = globalFree
    }

    /// Nanoseconds to wait before `peer` may try again (0: now).
    func wait(_ peer: String, now: UInt64) -> UInt64 {
        let own = records[peer].map { $0.notBefore > now ? $0.notBefore - now : 0 } ?? 0
        let all = everyone.notBefore > now ? everyone.notBefore - now : 0
        return max(own, all)
    }

    mutating func failed(_ peer: String, now: UInt64) {
        if records[peer] == nil && records.count >= capacity {
            // Forget the address whose lock ended longest ago.
            if let stale = records.min(by: { $0.value.notBefore < $1.value.notBefore })?.key { records.removeValue(forKey: stale) }
        }
        var record = records[peer] ?? Record()
        record.failures += 1
        if record.failures > free { record.notBefore = now + delay(record.failures - free) }
        records[peer] = record
        everyone.failures += 1
        if everyone.failures > globalFree { everyone.notBefore = now + delay(everyone.failures - globalFree) }
    }

    mutating func succeeded(_ peer: String) {
        records.removeValue(forKey: peer)
        everyone = Record()
    }

    func failures(_ peer: String) -> Int { records[peer]?.failures ?? 0 }

    private func delay(_ over: Int) -> UInt64 {
        let seconds = UInt64(1) << UInt64(min(over - 1, 10))
        return min(seconds * 1_000_000_000, maxDelay)
    }
}
