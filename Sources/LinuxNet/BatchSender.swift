#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import RelayCore

/// Queues datagrams and sends them with sendmmsg, one call per socket per flush.
///
/// It owns the headers, iovecs and destination addresses; the payload bytes belong to the caller
/// and must stay unchanged until `flush()` (the relay flushes before it reuses a receive buffer).
public final class BatchSender {
    public let capacity: Int
    private let names: UnsafeMutablePointer<sockaddr_storage>
    private let nameLengths: UnsafeMutablePointer<socklen_t>
    private let iovecs: UnsafeMutablePointer<iovec>
    private let descriptors: UnsafeMutablePointer<Int32>
    private let scratch: UnsafeMutablePointer<tr_mmsghdr>
    /// Queued messages.
    public private(set) var count = 0

    /// Outcome counters since creation (read by the owner for its statistics).
    public private(set) var sent = 0
    public private(set) var dropped = 0
    /// The last error that dropped a datagram (for a rate-limited log line).
    public private(set) var lastError: Errno?

    public init(capacity: Int) {
        self.capacity = capacity
        names = .allocate(capacity: capacity)
        nameLengths = .allocate(capacity: capacity)
        iovecs = .allocate(capacity: capacity)
        descriptors = .allocate(capacity: capacity)
        scratch = .allocate(capacity: capacity)
        scratch.initialize(repeating: tr_mmsghdr(), count: capacity)
    }

    deinit {
        names.deallocate()
        nameLengths.deallocate()
        iovecs.deallocate()
        descriptors.deallocate()
        scratch.deallocate()
    }

    public var isFull: Bool { count == capacity }

    /// Queues `bytes` for `destination` on socket `fd`; flushes first when full.
    ///
    /// Zero-copy: only the pointer is kept, so `bytes` must stay valid and unchanged until the
    /// next `flush()`. Callers send from buffers that live that long (a receive slot, an
    /// in-flight entry), never from a scratch buffer they write again before the flush — that
    /// gave several clients of one batch the same answer once (the cache's hits, see
    /// Worker+Cache.swift).
    @inline(__always)
    public func enqueue(fd: Int32, bytes: UnsafeRawBufferPointer, to destination: Endpoint) {
        if count == capacity { flush() }
        nameLengths[count] = destination.write(to: UnsafeMutableRawPointer(names + count))
        iovecs[count] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
        descriptors[count] = fd
        count += 1
    }

    /// Sends everything queued: for each socket, its messages in order, with as few sendmmsg calls
    /// as the kernel allows. A full socket buffer drops the rest for that socket (UDP semantics,
    /// counted); another error drops only the message it names.
    public func flush() {
        var done = 0
        while done < count {
            let fd = descriptors[done]
            // Gather this socket's messages (the common case: all of them) into the scratch vector.
            var n = 0
            var i = done
            while i < count {
                if descriptors[i] == fd {
                    scratch[n].msg_hdr = msghdr(
                        msg_name: UnsafeMutableRawPointer(names + i), msg_namelen: nameLengths[i],
                        msg_iov: iovecs + i, msg_iovlen: 1, msg_control: nil, msg_controllen: 0, msg_flags: 0)
                    scratch[n].msg_len = 0
                    n += 1
                    descriptors[i] = -1
                }
                i += 1
            }
            send(fd: fd, count: n)
            while done < count && descriptors[done] == -1 { done += 1 }
        }
        count = 0
    }

    private func send(fd: Int32, count n: Int) {
        var offset = 0
        while offset < n {
            let result = tr_sendmmsg(fd, scratch + offset, UInt32(n - offset), Int32(MSG_DONTWAIT))
            if result > 0 {
                offset += Int(result)
                sent += Int(result)
                continue
            }
            let error = Errno.current
            if error == .interrupted { continue }
            lastError = error
            if error.rawValue == EAGAIN {
                dropped += n - offset
                return
            }
            // The first message failed on its own (unreachable, EPERM...): drop it, go on.
            dropped += 1
            offset += 1
        }
    }
}
