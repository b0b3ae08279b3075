import CLinuxShim
import Glibc
import Testing
@testable import LinuxNet
import RelayCore

/// Batch receive and send through the real kernel, on loopback only.
@Suite struct BatchIOTests {
    @Test func mmsghdrMirrorMatchesGlibc() {
        #expect(MemoryLayout<tr_mmsghdr>.size == tr_mmsghdr_size())
        #expect(MemoryLayout<tr_mmsghdr>.offset(of: \tr_mmsghdr.msg_len) == tr_mmsghdr_msg_len_offset())
    }

    private func boundSocket(_ address: String, options: [SocketOption] = []) throws -> (Socket, Endpoint) {
        let endpoint = Endpoint(address: IPAddress(address)!, port: 0)
        let socket = try Socket.udp(for: endpoint)
        try socket.set(options)
        try socket.bind(to: endpoint)
        return (socket, try socket.localEndpoint())
    }

    @Test(arguments: ["127.0.0.1", "::1"])
    func sendsAndReceivesABatchWithOriginalDestinations(address: String) throws {
        let (receiver, receiverEndpoint) = try boundSocket(address, options: [.receiveOriginalDestination])
        let (sender, senderEndpoint) = try boundSocket(address)
        let batchSender = BatchSender(capacity: 8)
        let payloads: [[UInt8]] = (0..<20).map { i in [UInt8](repeating: UInt8(i), count: 10 + i) }
        // Payloads must outlive the flush: keep them in one allocation.
        let storage = UnsafeMutableRawPointer.allocate(byteCount: 20 * 64, alignment: 8)
        defer { storage.deallocate() }
        for (i, p) in payloads.enumerated() {
            (storage + i * 64).copyMemory(from: p, byteCount: p.count)
            batchSender.enqueue(fd: sender.fd, bytes: UnsafeRawBufferPointer(start: storage + i * 64, count: p.count), to: receiverEndpoint)
        }
        batchSender.flush()
        #expect(batchSender.sent == 20)
        #expect(batchSender.dropped == 0)

        let batch = BatchReceiver(capacity: 16, messageSize: 64)
        var got: [[UInt8]] = []
        for _ in 0..<10 where got.count < 20 {
            let n = try batch.receive(from: receiver.fd)
            for i in 0..<n {
                got.append(Array(batch.payload(i)))
                #expect(batch.source(i) == senderEndpoint)
                #expect(batch.controlMessages(i).originalDestination == receiverEndpoint)
                #expect(!batch.isTruncated(i))
            }
        }
        #expect(got == payloads)
        #expect(try batch.receive(from: receiver.fd) == 0)
    }

    @Test func flagsDatagramsLongerThanTheSlot() throws {
        let (receiver, receiverEndpoint) = try boundSocket("127.0.0.1")
        let (sender, _) = try boundSocket("127.0.0.1")
        let big = [UInt8](repeating: 7, count: 100)
        _ = try big.withUnsafeBytes { try sender.send($0, to: receiverEndpoint) }
        let batch = BatchReceiver(capacity: 4, messageSize: 32)
        #expect(try batch.receive(from: receiver.fd) == 1)
        #expect(batch.isTruncated(0))
        #expect(batch.payload(0).count == 32)
    }

    @Test func sendErrorsDropOnlyTheFailingMessage() throws {
        let (receiver, receiverEndpoint) = try boundSocket("127.0.0.1")
        let (sender, _) = try boundSocket("127.0.0.1")
        let sink = BatchSender(capacity: 4)
        let bytes: [UInt8] = [1, 2, 3]
        bytes.withUnsafeBytes { raw in
            // An IPv6 destination on an IPv4 socket fails alone; the next one still goes out.
            sink.enqueue(fd: sender.fd, bytes: raw, to: Endpoint(address: IPAddress("::1")!, port: 9))
            sink.enqueue(fd: sender.fd, bytes: raw, to: receiverEndpoint)
            sink.flush()
        }
        #expect(sink.dropped == 1)
        #expect(sink.sent == 1)
        let batch = BatchReceiver(capacity: 4, messageSize: 32)
        #expect(try batch.receive(from: receiver.fd) == 1)
    }

    @Test func socketOptionsUseTheFamilyLevel() {
        #expect(SocketOption.transparent.parameters(family: AF_INET).level == SOL_IP)
        #expect(SocketOption.transparent.parameters(family: AF_INET6).level == SOL_IPV6)
        #expect(SocketOption.transparent.parameters(family: AF_INET6).name == IPV6_TRANSPARENT)
        #expect(SocketOption.receiveOriginalDestination.parameters(family: AF_INET6).name == IPV6_RECVORIGDSTADDR)
        #expect(SocketOption.receiveOriginalDestination.parameters(family: AF_INET).name == IP_RECVORIGDSTADDR)
    }

    @Test func randomSourceStaysInBounds() {
        let random = RandomSource()
        var seen = Set<Int>()
        for _ in 0..<10_000 {
            let v = random.next(below: 7)
            #expect(v >= 0 && v < 7)
            seen.insert(v)
        }
        #expect(seen.count == 7)
    }
}
