import Testing
@testable import Relay

/// IDs scripted by the test, to play the random source.
final class ScriptedIDs: RandomIDs {
    var ids: [UInt16]
    init(_ ids: [UInt16]) { self.ids = ids }
    func nextID() -> UInt16 { ids.removeFirst() }
}

@Suite struct InFlightTableTests {
    @Test func allocateLookupRelease() throws {
        let table = InFlightTable(capacity: 4, maxQueryLength: 64)
        let ids = ScriptedIDs([10, 20])
        let a = try #require(table.allocate(random: ids))
        let b = try #require(table.allocate(random: ids))
        #expect(table.lookup(id: 10) == a)
        #expect(table.lookup(id: 20) == b)
        #expect(table.lookup(id: 30) == nil)
        #expect(table.count == 2)
        table.release(a)
        #expect(table.lookup(id: 10) == nil)
        #expect(table.count == 1)
    }

    /// A colliding random ID is drawn again: two queries in flight never share an ID.
    @Test func idsAreUniqueInFlight() throws {
        let table = InFlightTable(capacity: 4, maxQueryLength: 64)
        let ids = ScriptedIDs([7, 7, 7, 9])
        let a = try #require(table.allocate(random: ids))
        let b = try #require(table.allocate(random: ids))
        #expect(table[a].upstreamID == 7)
        #expect(table[b].upstreamID == 9)
        #expect(ids.ids.isEmpty)
    }

    @Test func fullTableRefuses() {
        let table = InFlightTable(capacity: 2, maxQueryLength: 64)
        let ids = ScriptedIDs([1, 2, 3])
        #expect(table.allocate(random: ids) != nil)
        #expect(table.allocate(random: ids) != nil)
        #expect(table.isFull)
        #expect(table.allocate(random: ids) == nil)
    }

    @Test func deadlinesComeOutInOrderAndRescheduleMovesToTheEnd() throws {
        let table = InFlightTable(capacity: 8, maxQueryLength: 64)
        let ids = ScriptedIDs([1, 2, 3, 4])
        let a = try #require(table.allocate(random: ids))
        let b = try #require(table.allocate(random: ids))
        let c = try #require(table.allocate(random: ids))
        table.schedule(a, deadline: 100)
        table.schedule(b, deadline: 200)
        table.schedule(c, deadline: 300)
        #expect(table.earliest == a)
        table.schedule(a, deadline: 400)  // a retry
        #expect(table.earliest == b)
        table.release(b)
        #expect(table.earliest == c)
        table.release(c)
        #expect(table.earliest == a)
        // A retry gets a fresh ID and the old one stops matching.
        table.assignID(a, random: ids)
        #expect(table.lookup(id: 1) == nil)
        #expect(table.lookup(id: 4) == a)
        table.release(a)
        #expect(table.earliest == nil)
        #expect(table.isEmpty)
    }

    @Test func countersAddUpAndPrintInOrder() {
        var a = Counters()
        a.received = 3
        a.answered = 2
        var b = Counters()
        b.received = 4
        b.upstreamMismatches = 1
        let sum = a + b
        #expect(sum.received == 7)
        #expect(sum.summary.hasPrefix("received=7 forwarded=0 answered=2 "))
        #expect(sum.summary.contains(" upstream_mismatch=1 "))
    }
}
