import LinuxNet

/// Splits a TCP byte stream into DNS messages (RFC 1035 §4.2.2, RFC 7766: a two-byte length, then
/// the message), in one buffer allocated per connection. A message handed out stays valid until
/// the next `readableSpace()`, which may move unread bytes to the front.
public final class FrameReader {
    public enum Frame {
        /// A complete message, writable in place.
        case message(UnsafeMutableRawBufferPointer)
        /// More bytes are needed.
        case incomplete
        /// A length no DNS message can have here (shorter than a header, or over the maximum).
        case invalid(length: Int)
    }

    public let maxMessage: Int
    private let storage: UnsafeMutableRawPointer
    private let capacity: Int
    private var start = 0
    private var end = 0

    public init(maxMessage: Int) {
        self.maxMessage = maxMessage
        capacity = maxMessage + 2
        storage = .allocate(byteCount: capacity, alignment: 8)
    }

    deinit { storage.deallocate() }

    /// Whether part of a message has arrived and waits for the rest.
    public var hasPartialMessage: Bool { end > start }

    /// Where the next read goes. Empty only when a whole maximal message is buffered unread.
    public func readableSpace() -> UnsafeMutableRawBufferPointer {
        if start == end {
            start = 0
            end = 0
        } else if start > 0 && capacity - end < 2 + maxMessage {
            (storage).copyMemory(from: storage + start, byteCount: end - start)
            end -= start
            start = 0
        }
        return UnsafeMutableRawBufferPointer(start: storage + end, count: capacity - end)
    }

    /// Accounts for `count` bytes read into `readableSpace()`.
    public func commit(_ count: Int) {
        end += count
    }

    /// The next complete message, if any.
    public func next() -> Frame {
        guard end - start >= 2 else { return .incomplete }
        let length = Int(storage.load(fromByteOffset: start, as: UInt8.self)) << 8
            | Int(storage.load(fromByteOffset: start + 1, as: UInt8.self))
        guard length >= 12, length <= maxMessage else { return .invalid(length: length) }
        guard end - start >= 2 + length else { return .incomplete }
        let message = UnsafeMutableRawBufferPointer(start: storage + start + 2, count: length)
        start += 2 + length
        return .message(message)
    }
}

/// Bytes waiting to be written to a stream socket, framed with the two-byte length.
final class OutputQueue {
    private var bytes: [UInt8] = []
    private var head = 0

    /// Bytes not yet written.
    var pending: Int { bytes.count - head }
    var isEmpty: Bool { head == bytes.count }

    func append(message: UnsafeRawBufferPointer) {
        if head == bytes.count {
            bytes.removeAll(keepingCapacity: true)
            head = 0
        }
        bytes.append(UInt8(message.count >> 8))
        bytes.append(UInt8(message.count & 0xff))
        bytes.append(contentsOf: message)
    }

    /// Writes as much as the socket takes. Returns nil when all went out or the socket is full
    /// (`isEmpty` tells which), or the error that ended the connection.
    func flush(to socket: Socket) -> StreamResult? {
        while head < bytes.count {
            let result = bytes.withUnsafeBytes { raw in
                socket.write(UnsafeRawBufferPointer(rebasing: raw[head...]))
            }
            switch result {
            case .bytes(let n): head += n
            case .wouldBlock: return nil
            case .closed, .failed: return result
            }
        }
        if head > 65536 {
            bytes.removeFirst(head)
            head = 0
        }
        return nil
    }
}

extension OutputQueue {
    /// Writes what the socket takes and watches it for writability only while something is left.
    /// False when the connection failed.
    func flush(to socket: Socket, epoll: Epoll, token: UInt64, watchingWrites: inout Bool) -> Bool {
        if flush(to: socket) != nil { return false }
        let needsWrites = !isEmpty
        if needsWrites != watchingWrites {
            watchingWrites = needsWrites
            epoll.modify(socket.fd, token: token, events: needsWrites ? [.readable, .writable] : .readable)
        }
        return true
    }
}
