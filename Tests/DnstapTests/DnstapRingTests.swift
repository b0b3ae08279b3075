import Dnstap
import RelayCore
import Testing

/// The worker-to-writer ring: events and messages come out whole and in order across the wrap,
/// a full ring refuses and counts, a message too large for an entry is refused, and only the
/// kinds asked for are wanted.
@Suite struct DnstapRingTests {
    static func event(_ n: Int) -> DnstapEvent {
        DnstapEvent(kind: .clientResponse, transport: n % 2 == 0 ? .udp : .tcp,
                    queryAddress: Endpoint(address: .v4(IPv4Address(10, 53, 1, UInt8(n % 250))), port: UInt16(n % 65536)),
                    responseAddress: Endpoint(address: IPAddress("fd53:3::53")!, port: 53), queryTime: UInt64(n), responseTime: UInt64(n) + 7,
                    policyAction: UInt8(n % 7), ruleList: UInt16(n % 3), ruleLine: UInt32(n))
    }

    static func message(_ n: Int) -> [UInt8] { (0..<(12 + n * 37 % 1500)).map { UInt8(truncatingIfNeeded: $0 &+ n) } }

    @Test func eventsComeOutWholeAndInOrderAcrossManyWraps() {
        let ring = DnstapRing(capacity: 0, kinds: [.clientResponse])
        #expect(ring.capacity == 512 << 10)
        var pushed = 0, drained = 0
        for round in 0..<2000 {
            // Fill a varying amount, then drain all of it.
            for _ in 0..<(round % 13 + 1) {
                let ok = Self.message(pushed).withUnsafeBytes { ring.push(Self.event(pushed), message: $0) }
                #expect(ok)
                pushed += 1
            }
            ring.drain { event, message in
                let expected = Self.event(drained)
                #expect(event.queryAddress == expected.queryAddress && event.responseAddress == expected.responseAddress)
                #expect(event.queryTime == expected.queryTime && event.responseTime == expected.responseTime)
                #expect(event.transport == expected.transport && event.policyAction == expected.policyAction)
                #expect(event.ruleList == expected.ruleList && event.ruleLine == expected.ruleLine && event.kind == .clientResponse)
                #expect(Array(message) == Self.message(drained))
                drained += 1
            }
            #expect(ring.waiting == 0)
        }
        #expect(pushed == drained && pushed > 10000)  // about 20 wraps of the 512 KiB ring
        #expect(ring.dropped.load(ordering: .relaxed) == 0)
    }

    @Test func aFullRingRefusesAndCountsThenTakesAgainOnceDrained() {
        let ring = DnstapRing(capacity: 512 << 10, kinds: [.clientQuery])
        let message = [UInt8](repeating: 0xab, count: 1000)
        var accepted = 0
        for n in 0..<1000 where message.withUnsafeBytes({ ring.push(Self.event(n), message: $0) }) { accepted += 1 }
        #expect(accepted > 450 && accepted < 525)  // 512 KiB of ~1.1 KiB entries
        #expect(ring.dropped.load(ordering: .relaxed) == 1000 - accepted)
        var sizes: Set<Int> = []
        #expect(ring.drain { _, m in sizes.insert(m.count) } == accepted)
        #expect(sizes == [1000])
        #expect(message.withUnsafeBytes { ring.push(Self.event(0), message: $0) })
    }

    @Test func aMessageLargerThanAQuarterOfTheRingIsRefused() {
        let ring = DnstapRing(capacity: 0, kinds: [.clientResponse])
        let large = [UInt8](repeating: 1, count: 65535)  // the largest TCP answer fits
        #expect(large.withUnsafeBytes { ring.push(Self.event(1), message: $0) })
        #expect(ring.drain { _, _ in } == 1)
        let tooLarge = [UInt8](repeating: 1, count: ring.maxMessage + 1)
        #expect(!tooLarge.withUnsafeBytes { ring.push(Self.event(1), message: $0) })
        #expect(ring.dropped.load(ordering: .relaxed) == 1 && ring.waiting == 0)
    }

    @Test func onlyTheKindsAskedForAreWanted() {
        let ring = DnstapRing(capacity: 0, kinds: [.clientQuery, .forwarderResponse])
        #expect(ring.wants(.clientQuery) && ring.wants(.forwarderResponse))
        #expect(!ring.wants(.clientResponse) && !ring.wants(.forwarderQuery))
    }

    /// The producer and consumer on two threads at once: nothing lost but what was counted, and
    /// nothing torn.
    @Test func twoThreadsAtOnce() async {
        let ring = DnstapRing(capacity: 0, kinds: [.clientResponse])
        let total = 20_000
        let producer = Task.detached {
            for n in 0..<total { _ = Self.message(n % 50).withUnsafeBytes { ring.push(Self.event(n), message: $0) } }
        }
        var seen = 0
        var last = -1
        var intact = true
        while true {
            ring.drain { event, message in
                let n = Int(event.queryTime)
                if n <= last || Array(message) != Self.message(n % 50) || event.ruleLine != UInt32(n) { intact = false }
                last = n
                seen += 1
            }
            if seen + ring.dropped.load(ordering: .relaxed) == total { break }
            await Task.yield()
        }
        await producer.value
        ring.drain { _, _ in seen += 1 }
        #expect(intact)
        #expect(seen + ring.dropped.load(ordering: .relaxed) == total)
        #expect(seen > 0)
    }
}
