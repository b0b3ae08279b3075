import Glibc
import Testing
@testable import LinuxNet
import RelayCore

/// UDP GSO runs through the real kernel on loopback: whatever mix of sizes and sockets goes in,
/// the receiver gets the same datagrams, whole and in order, and runs are cut where the kernel
/// requires (a larger datagram, after a shorter one, 64 segments, 64 KiB, another socket).
@Suite struct SegmentedSenderTests {
    private func pair(_ address: String = "127.0.0.1") throws -> (sender: Socket, receiver: Socket) {
        let any = Endpoint(address: IPAddress(address)!, port: 0)
        let receiver = try Socket.udp(for: any)
        try receiver.set(.receiveBuffer(8 << 20))
        try receiver.bind(to: any)
        let sender = try Socket.udp(for: any)
        try sender.connect(to: try receiver.localEndpoint())
        return (sender, receiver)
    }

    private func drain(_ receiver: Socket, expecting count: Int) throws -> [[UInt8]] {
        let batch = BatchReceiver(capacity: 64, messageSize: 2048)
        var got: [[UInt8]] = []
        for _ in 0..<1000 where got.count < count {
            let n = try batch.receive(from: receiver.fd)
            for i in 0..<n { got.append(Array(batch.payload(i))) }
            if n == 0 { usleep(1000) }
        }
        return got
    }

    /// (what, datagram sizes, sendmsg calls expected with GSO)
    static let shapes: [(String, [Int], Int)] = [
        ("one datagram", [1200], 1),
        ("a full-sized run with a short last one", Array(repeating: 1200, count: 20) + [300], 1),
        ("a short one ends the run", [1200, 1200, 500, 1200, 1200], 2),
        ("a larger one starts a new run", [800, 800, 1200, 1200], 2),
        ("64 segments at most", Array(repeating: 100, count: 130), 3),
        ("64 KiB at most", Array(repeating: 1400, count: 60), 2),
        ("empty datagrams", [0, 0, 1200], 3),
    ]

    @Test(arguments: shapes.indices)
    func datagramsArriveWholeAndInOrder(index: Int) throws {
        let (what, sizes, calls) = Self.shapes[index]
        let (sender, receiver) = try pair()
        let segmented = SegmentedSender()
        let storage = UnsafeMutableRawPointer.allocate(byteCount: sizes.reduce(0, +) + 1, alignment: 8)
        defer { storage.deallocate() }
        var offset = 0
        var expected: [[UInt8]] = []
        for (i, size) in sizes.enumerated() {
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: i &* 31 &+ $0) }
            (storage + offset).copyMemory(from: bytes, byteCount: size)
            segmented.append(fd: sender.fd, bytes: UnsafeRawBufferPointer(start: storage + offset, count: size))
            expected.append(bytes)
            offset += size
        }
        segmented.flush()
        #expect(segmented.sent == sizes.count && segmented.dropped == 0, "\(what)")
        if segmented.segmentation { #expect(segmented.calls == calls, "\(what)") }
        let got = try drain(receiver, expecting: sizes.count)
        #expect(got.map(\.count) == sizes, "\(what)")
        #expect(got == expected, "\(what)")
    }

    @Test func anotherSocketStartsANewRun() throws {
        let a = try pair(), b = try pair("::1")
        let segmented = SegmentedSender()
        let bytes = [UInt8](repeating: 9, count: 1000)
        bytes.withUnsafeBytes { raw in
            for fd in [a.sender.fd, a.sender.fd, b.sender.fd, b.sender.fd, a.sender.fd] { segmented.append(fd: fd, bytes: raw) }
            segmented.flush()
        }
        #expect(segmented.sent == 5)
        #expect(try drain(a.receiver, expecting: 3).count == 3)
        #expect(try drain(b.receiver, expecting: 2).count == 2)
    }

    /// An unconnected socket (the relay's reply socket): a run is one destination.
    @Test func runsToExplicitDestinationsBreakWhereTheDestinationChanges() throws {
        let any = Endpoint(address: IPAddress("127.0.0.1")!, port: 0)
        let receivers = try (0..<2).map { _ in
            let r = try Socket.udp(for: any)
            try r.bind(to: any)
            return r
        }
        let destinations = try receivers.map { try $0.localEndpoint() }
        let sender = try Socket.udp(for: any)
        let segmented = SegmentedSender()
        let bytes = [UInt8](repeating: 4, count: 1200)
        let order = [0, 0, 0, 1, 1, 0, 1, 1, 1, 1]
        bytes.withUnsafeBytes { raw in
            for i in order { segmented.append(fd: sender.fd, bytes: raw, to: destinations[i]) }
            segmented.flush()
        }
        #expect(segmented.sent == order.count && segmented.dropped == 0)
        if segmented.segmentation { #expect(segmented.calls == 4) }
        #expect(try drain(receivers[0], expecting: 4).count == 4)
        #expect(try drain(receivers[1], expecting: 6).count == 6)
    }

    @Test func aClosedSocketDropsAndCounts() throws {
        let segmented = SegmentedSender()
        let bytes = [UInt8](repeating: 1, count: 100)
        bytes.withUnsafeBytes { raw in
            segmented.append(fd: 1_000_000, bytes: raw)
            segmented.append(fd: 1_000_000, bytes: raw)
            segmented.flush()  // a GSO run
            segmented.append(fd: 1_000_000, bytes: raw)
            segmented.flush()  // a single datagram, sent on its own
        }
        #expect(segmented.sent == 0 && segmented.dropped == 3)
    }
}
