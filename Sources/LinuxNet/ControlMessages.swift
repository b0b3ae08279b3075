#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import RelayCore

/// One ancillary message: level, type and its payload (valid as long as the buffer it came from).
public struct ControlMessage {
    public var level: Int32
    public var type: Int32
    public var data: UnsafeRawBufferPointer
}

/// The control messages in a `msg_control` buffer, as a collection to iterate
/// (the CMSG_* macros, reached through CLinuxShim).
public struct ControlMessages: Sequence {
    private let control: UnsafeRawBufferPointer

    /// `control` is the filled part of the buffer (`msg_controllen` bytes).
    public init(control: UnsafeRawBufferPointer) {
        self.control = control
    }

    public struct Iterator: IteratorProtocol {
        private var header = msghdr()
        private var current: UnsafeMutablePointer<cmsghdr>?

        init(control: UnsafeRawBufferPointer) {
            header.msg_control = UnsafeMutableRawPointer(mutating: control.baseAddress)
            header.msg_controllen = control.count
            current = control.count >= MemoryLayout<cmsghdr>.size ? tr_cmsg_firsthdr(&header) : nil
        }

        public mutating func next() -> ControlMessage? {
            guard let cmsg = current else { return nil }
            let dataStart = UnsafeRawPointer(tr_cmsg_data(cmsg)!)
            let headerLength = Int(tr_cmsg_len(0))
            let length = Int(cmsg.pointee.cmsg_len)
            // A length shorter than the header or past the buffer ends the walk: never read beyond.
            let end = UnsafeRawPointer(header.msg_control!) + header.msg_controllen
            guard length >= headerLength, dataStart + (length - headerLength) <= end else {
                current = nil
                return nil
            }
            let message = ControlMessage(
                level: cmsg.pointee.cmsg_level, type: cmsg.pointee.cmsg_type,
                data: UnsafeRawBufferPointer(start: dataStart, count: length - headerLength))
            current = tr_cmsg_nxthdr(&header, cmsg)
            return message
        }
    }

    public func makeIterator() -> Iterator { Iterator(control: control) }

    /// The original destination from IP_ORIGDSTADDR or IPV6_ORIGDSTADDR, if present.
    @inline(__always)
    public var originalDestination: Endpoint? {
        for message in self {
            if (message.level == SOL_IP && message.type == IP_ORIGDSTADDR)
                || (message.level == SOL_IPV6 && message.type == IPV6_ORIGDSTADDR) {
                guard let base = message.data.baseAddress else { return nil }
                return Endpoint(sockaddr: base, length: socklen_t(message.data.count))
            }
        }
        return nil
    }
}

/// Writes control messages into a caller-owned, cmsghdr-aligned buffer, the way the kernel does.
/// Used to build test input that plays the kernel, and to attach ancillary data to sends.
public struct ControlMessageWriter {
    private let buffer: UnsafeMutableRawBufferPointer
    /// Bytes written so far (what goes in `msg_controllen`).
    public private(set) var length = 0

    public init(buffer: UnsafeMutableRawBufferPointer) {
        self.buffer = buffer
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
    }

    /// Appends one message; false when it does not fit.
    public mutating func append(level: Int32, type: Int32, payload: UnsafeRawBufferPointer) -> Bool {
        let space = Int(tr_cmsg_space(payload.count))
        guard length + space <= buffer.count, let base = buffer.baseAddress else { return false }
        let cmsg = (base + length).bindMemory(to: cmsghdr.self, capacity: 1)
        cmsg.pointee.cmsg_len = Int(tr_cmsg_len(payload.count))
        cmsg.pointee.cmsg_level = level
        cmsg.pointee.cmsg_type = type
        if let source = payload.baseAddress, payload.count > 0 {
            UnsafeMutableRawPointer(tr_cmsg_data(cmsg)!).copyMemory(from: source, byteCount: payload.count)
        }
        length += space
        return true
    }

    /// Appends an IP(V6)_ORIGDSTADDR message for `endpoint`, as the kernel delivers it.
    public mutating func appendOriginalDestination(_ endpoint: Endpoint) -> Bool {
        var storage = sockaddr_storage()
        return withUnsafeMutableBytes(of: &storage) { raw in
            let size = Int(endpoint.write(to: raw.baseAddress!))
            let payload = UnsafeRawBufferPointer(start: raw.baseAddress, count: size)
            return endpoint.address.isIPv6
                ? append(level: SOL_IPV6, type: IPV6_ORIGDSTADDR, payload: payload)
                : append(level: SOL_IP, type: IP_ORIGDSTADDR, payload: payload)
        }
    }

    /// Bytes needed for a message with `payload` bytes of data (CMSG_SPACE).
    public static func space(forPayload payload: Int) -> Int { Int(tr_cmsg_space(payload)) }
}
