#if canImport(Glibc)
import Glibc
#endif
import CNetfilter
import RelayCore

/// A libmnl netlink socket with one way of sending requests and collecting their acks.
final class NetlinkSocket {
    private let socket: OpaquePointer
    let portID: UInt32
    private var sequence: UInt32
    private let receiveBuffer: UnsafeMutableRawPointer
    private let receiveSize = 65536

    init(bus: Int32) throws {
        guard let socket = mnl_socket_open(bus) else {
            throw RelayError(.netlink, "cannot open a netlink socket: \(Errno.current)")
        }
        guard mnl_socket_bind(socket, 0, pid_t(MNL_SOCKET_AUTOPID)) >= 0 else {
            let error = Errno.current
            mnl_socket_close(socket)
            throw RelayError(.netlink, "cannot bind a netlink socket: \(error)")
        }
        self.socket = socket
        portID = mnl_socket_get_portid(socket)
        sequence = UInt32(truncatingIfNeeded: time(nil))
        receiveBuffer = .allocate(byteCount: receiveSize, alignment: 8)
    }

    deinit {
        mnl_socket_close(socket)
        receiveBuffer.deallocate()
    }

    /// The next request sequence number.
    func nextSequence() -> UInt32 {
        sequence &+= 1
        return sequence
    }

    /// Sends `bytes` (one or more netlink messages) and waits for `acks` acknowledgements.
    /// The first error reply is thrown as its errno. Replies are walked one by one: `mnl_cb_run`
    /// would stop at the first ACK of a batch.
    /// `onReply` sees every other message that arrives meanwhile (the answer to a GET request).
    func request(_ bytes: UnsafeRawBufferPointer, acks expected: Int,
                 onReply: ((UnsafePointer<nlmsghdr>) -> Void)? = nil) throws(Errno) {
        guard mnl_socket_sendto(socket, bytes.baseAddress, bytes.count) >= 0 else { throw Errno.current }
        var acks = 0
        while acks < expected {
            let n = mnl_socket_recvfrom(socket, receiveBuffer, receiveSize)
            if n < 0 {
                if errno == EINTR { continue }
                throw Errno.current
            }
            var remaining = Int32(n)
            var header: UnsafePointer<nlmsghdr>? = UnsafePointer(receiveBuffer.assumingMemoryBound(to: nlmsghdr.self))
            while let h = header, mnl_nlmsg_ok(h, remaining) {
                if h.pointee.nlmsg_type == UInt16(NLMSG_ERROR) {
                    let payload = mnl_nlmsg_get_payload(h)!.assumingMemoryBound(to: nlmsgerr.self)
                    if payload.pointee.error != 0 { throw Errno(rawValue: -payload.pointee.error) }
                    acks += 1
                } else {
                    onReply?(h)
                }
                header = UnsafePointer(mnl_nlmsg_next(h, &remaining))
            }
        }
    }
}

/// A zeroed buffer that netlink messages are appended to (libmnl leaves attribute padding
/// uninitialised, so the buffer is cleared up front).
final class NetlinkMessageBuffer {
    let base: UnsafeMutableRawPointer
    let capacity: Int
    private(set) var length = 0
    /// Messages appended that ask for an ack.
    private(set) var acksExpected = 0

    init(capacity: Int = 1 << 18) {
        self.capacity = capacity
        base = .allocate(byteCount: capacity, alignment: 8)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: capacity)
    }

    deinit { base.deallocate() }

    /// Where the next message starts.
    var tail: UnsafeMutablePointer<CChar> { (base + length).assumingMemoryBound(to: CChar.self) }

    /// Accounts for the message just built at `tail`.
    func commit(_ header: UnsafeMutablePointer<nlmsghdr>, expectsAck: Bool) {
        length += Int(header.pointee.nlmsg_len + 3) & ~3
        precondition(length <= capacity, "netlink message buffer overflow")
        if expectsAck { acksExpected += 1 }
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: length) }
}
