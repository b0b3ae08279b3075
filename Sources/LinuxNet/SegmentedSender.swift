#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import RelayCore

/// Sends runs of equal-sized datagrams to one destination as one `sendmsg` with
/// UDP_SEGMENT (UDP GSO, Linux 4.18+): the kernel builds one large buffer and routes, filters and
/// passes it as one, cutting it into datagrams as late as it can. A bulk QUIC flow sends exactly
/// such runs (full-sized packets), and the per-datagram kernel path was most of the relay's cost.
///
/// Zero-copy like `BatchSender`: the bytes appended must stay valid until `flush()`. A run ends at
/// another socket, at a datagram larger than the first, after a shorter one (which the kernel
/// allows only last), at `maxSegments`, or at 64 KiB. Where the kernel refuses GSO (EIO, EINVAL:
/// no checksum offload on the route, an old kernel), the run goes out datagram by datagram and
/// GSO stays off for this sender.
public final class SegmentedSender {
    /// Linux's limit on segments per send (UDP_MAX_SEGMENTS).
    public static let maxSegments = 64
    /// A UDP payload's upper bound.
    static let maxBytes = 65_000
    static let udpSegment: Int32 = 103  // UDP_SEGMENT from <linux/udp.h>
    static let solUDP: Int32 = 17

    private let iovecs: UnsafeMutablePointer<iovec>
    private let control: UnsafeMutableRawPointer
    private let controlSize: Int
    private var fd: Int32 = -1
    /// The run's destination (length 0: the socket's connected peer).
    private let name: UnsafeMutablePointer<sockaddr_storage>
    private var nameLength: socklen_t = 0
    private var destination: Endpoint?
    private var count = 0
    private var segmentSize = 0
    private var total = 0
    private var runEnded = false

    /// Whether GSO is still in use (cleared the first time the kernel refuses it).
    public private(set) var segmentation = true
    /// Datagrams sent, datagrams dropped (full socket buffer or an error), and sendmsg calls.
    public private(set) var sent = 0
    public private(set) var dropped = 0
    public private(set) var calls = 0

    public init() {
        iovecs = .allocate(capacity: Self.maxSegments)
        controlSize = tr_cmsg_space(MemoryLayout<UInt16>.size)
        control = .allocate(byteCount: controlSize, alignment: 8)
        name = .allocate(capacity: 1)
    }

    deinit {
        iovecs.deallocate()
        control.deallocate()
        name.deallocate()
    }

    /// Adds a datagram for `destination` on socket `fd` (nil: a connected socket's peer); sends
    /// the run so far first when it cannot join.
    @inline(__always)
    public func append(fd: Int32, bytes: UnsafeRawBufferPointer, to destination: Endpoint? = nil) {
        if count > 0 && (fd != self.fd || destination != self.destination || runEnded || bytes.count > segmentSize || count == Self.maxSegments
                         || total + bytes.count > Self.maxBytes || !segmentation) {
            flush()
        }
        if count == 0 {
            self.fd = fd
            self.destination = destination
            nameLength = destination?.write(to: UnsafeMutableRawPointer(name)) ?? 0
            segmentSize = bytes.count
            total = 0
            runEnded = false
        }
        iovecs[count] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
        count += 1
        total += bytes.count
        // A shorter datagram may only be last; an empty one cannot be a segment size at all.
        if bytes.count < segmentSize || bytes.count == 0 { runEnded = true }
    }

    /// Sends the run held.
    public func flush() {
        guard count > 0 else { return }
        defer { count = 0 }
        if count == 1 || !segmentation {
            sendEach()
            return
        }
        var message = msghdr()
        if nameLength > 0 {
            message.msg_name = UnsafeMutableRawPointer(name)
            message.msg_namelen = nameLength
        }
        message.msg_iov = iovecs
        message.msg_iovlen = count
        message.msg_control = control
        message.msg_controllen = controlSize
        if let header = tr_cmsg_firsthdr(&message) {
            header.pointee.cmsg_level = Self.solUDP
            header.pointee.cmsg_type = Self.udpSegment
            header.pointee.cmsg_len = tr_cmsg_len(MemoryLayout<UInt16>.size)
            UnsafeMutableRawPointer(tr_cmsg_data(header)).storeBytes(of: UInt16(segmentSize), as: UInt16.self)
        }
        calls += 1
        do {
            if try nonBlockingSyscall({ sendmsg(fd, &message, 0) }) != nil {
                sent += count
            } else {
                dropped += count
            }
        } catch let error where error.rawValue == EIO || error.rawValue == EINVAL || error.rawValue == ENOPROTOOPT {
            segmentation = false
            sendEach()
        } catch {
            dropped += count
        }
    }

    private func sendEach() {
        for i in 0..<count {
            calls += 1
            let result = try? nonBlockingSyscall {
                nameLength > 0
                    ? sendto(fd, iovecs[i].iov_base, iovecs[i].iov_len, 0, UnsafeRawPointer(name).assumingMemoryBound(to: sockaddr.self), nameLength)
                    : send(fd, iovecs[i].iov_base, iovecs[i].iov_len, 0)
            }
            // nil: a full buffer (EAGAIN) or an error; either way the datagram is dropped.
            if result != nil { sent += 1 } else { dropped += 1 }
        }
    }
}
