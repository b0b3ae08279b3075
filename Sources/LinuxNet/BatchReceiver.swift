#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import RelayCore

/// Receives up to `capacity` datagrams per recvmmsg into buffers it allocates once and owns
/// (the pattern of swift-nio's DatagramVectorReadManager). Nothing is allocated per datagram.
///
/// After `receive(from:)`, slots `0..<count` hold the datagrams until the next call.
public final class BatchReceiver {
    public let capacity: Int
    public let messageSize: Int
    private static let controlSize = 128

    private let buffers: UnsafeMutableRawPointer
    private let names: UnsafeMutablePointer<sockaddr_storage>
    private let controls: UnsafeMutableRawPointer
    private let iovecs: UnsafeMutablePointer<iovec>
    private let messages: UnsafeMutablePointer<tr_mmsghdr>
    /// How many slots the last receive filled.
    public private(set) var count = 0

    /// `messageSize` is the largest datagram kept whole; longer ones are flagged `isTruncated`.
    public init(capacity: Int, messageSize: Int) {
        precondition(capacity > 0 && messageSize > 0)
        self.capacity = capacity
        self.messageSize = messageSize
        buffers = .allocate(byteCount: capacity * messageSize, alignment: 16)
        names = .allocate(capacity: capacity)
        // cmsghdr needs 8-byte alignment; every slot starts on a multiple of 128.
        controls = .allocate(byteCount: capacity * Self.controlSize, alignment: 16)
        iovecs = .allocate(capacity: capacity)
        messages = .allocate(capacity: capacity)
        messages.initialize(repeating: tr_mmsghdr(), count: capacity)
        for i in 0..<capacity {
            iovecs[i] = iovec(iov_base: buffers + i * messageSize, iov_len: messageSize)
        }
    }

    deinit {
        buffers.deallocate()
        names.deallocate()
        controls.deallocate()
        iovecs.deallocate()
        messages.deallocate()
    }

    /// One recvmmsg on a non-blocking socket. Returns the number of datagrams (0 when none waited).
    @inline(__always)
    public func receive(from fd: Int32) throws(Errno) -> Int {
        // The kernel overwrites lengths and flags: reset them before every call (docs/LINUX-NOTES.md).
        for i in 0..<capacity {
            messages[i].msg_hdr.msg_name = UnsafeMutableRawPointer(names + i)
            messages[i].msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
            messages[i].msg_hdr.msg_iov = iovecs + i
            messages[i].msg_hdr.msg_iovlen = 1
            messages[i].msg_hdr.msg_control = controls + i * Self.controlSize
            messages[i].msg_hdr.msg_controllen = Self.controlSize
            messages[i].msg_hdr.msg_flags = 0
            messages[i].msg_len = 0
        }
        let received = try nonBlockingSyscall {
            tr_recvmmsg(fd, messages, UInt32(capacity), Int32(MSG_DONTWAIT), nil)
        }
        count = Int(received ?? 0)
        return count
    }

    /// The datagram in slot `i` (mutable: replies are built in place).
    @inline(__always)
    public func payload(_ i: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: buffers + i * messageSize, count: min(Int(messages[i].msg_len), messageSize))
    }

    /// The whole buffer of slot `i`, for building a reply longer than the datagram.
    @inline(__always)
    public func slot(_ i: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: buffers + i * messageSize, count: messageSize)
    }

    /// The sender of slot `i`.
    @inline(__always)
    public func source(_ i: Int) -> Endpoint? {
        Endpoint(sockaddr: UnsafeRawPointer(names + i), length: messages[i].msg_hdr.msg_namelen)
    }

    /// The control messages of slot `i`.
    @inline(__always)
    public func controlMessages(_ i: Int) -> ControlMessages {
        ControlMessages(control: UnsafeRawBufferPointer(start: controls + i * Self.controlSize,
                                                        count: messages[i].msg_hdr.msg_controllen))
    }

    /// True when the datagram was longer than the slot (MSG_TRUNC).
    @inline(__always)
    public func isTruncated(_ i: Int) -> Bool {
        messages[i].msg_hdr.msg_flags & Int32(MSG_TRUNC) != 0 || Int(messages[i].msg_len) > messageSize
    }

    /// True when the control buffer was too small (MSG_CTRUNC): the original destination may be missing.
    @inline(__always)
    public func isControlTruncated(_ i: Int) -> Bool {
        messages[i].msg_hdr.msg_flags & Int32(MSG_CTRUNC) != 0
    }
}
