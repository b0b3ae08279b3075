/// The question section of a message on the wire: where it ends and how two compare.
///
/// The bounds are hard (RFC 1035: labels ≤ 63 bytes, names ≤ 255 bytes) and nothing is read past
/// the buffer; a compression pointer in a question is refused, since a query's first name has no
/// earlier name to point to.
public enum Question {
    /// Offset just past the first question's QTYPE and QCLASS, or nil when it is malformed.
    @inline(__always)
    public static func end(in message: UnsafeRawBufferPointer) -> Int? {
        guard let p = message.baseAddress, message.count > DNSHeader.size else { return nil }
        var offset = DNSHeader.size
        var nameLength = 0
        while true {
            guard offset < message.count else { return nil }
            let length = Int(p.load(fromByteOffset: offset, as: UInt8.self))
            if length == 0 { offset += 1; break }
            guard length <= 63 else { return nil }  // also refuses pointers (0xC0) and 0x40/0x80 label types
            nameLength += length + 1
            guard nameLength < 255 else { return nil }
            offset += 1 + length
        }
        offset += 4
        return offset <= message.count ? offset : nil
    }

    /// QTYPE of the first question, given its end offset.
    @inline(__always)
    public static func type(in message: UnsafeRawBufferPointer, end: Int) -> UInt16 {
        DNSHeader.u16(message.baseAddress!, end - 4)
    }

    /// Whether `response` carries exactly the question `query` asked (name compared without
    /// regard to ASCII case, type and class exactly): the RFC 5452 check. `end` is the question's
    /// end in `query`, and so in a matching response.
    @inline(__always)
    public static func matches(query: UnsafeRawBufferPointer, end: Int, response: UnsafeRawBufferPointer) -> Bool {
        guard response.count >= end, let q = query.baseAddress, let r = response.baseAddress,
              DNSHeader.questionCount(r) == 1 else { return false }
        var i = DNSHeader.size
        while i < end {
            var a = q.load(fromByteOffset: i, as: UInt8.self)
            var b = r.load(fromByteOffset: i, as: UInt8.self)
            if a != b {
                // Fold ASCII letters only; length octets never fall in A...Z (they are ≤ 63).
                if a >= 0x41 && a <= 0x5a { a |= 0x20 }
                if b >= 0x41 && b <= 0x5a { b |= 0x20 }
                if a != b { return false }
            }
            i += 1
        }
        return true
    }

    /// The query's name as dotted text (lower-cased), for logs and tools; "." for the root.
    public static func name(in message: UnsafeRawBufferPointer) -> String? {
        guard Question.end(in: message) != nil, let p = message.baseAddress else { return nil }
        var labels: [String] = []
        var offset = DNSHeader.size
        while true {
            let length = Int(p.load(fromByteOffset: offset, as: UInt8.self))
            if length == 0 { break }
            let bytes = UnsafeRawBufferPointer(start: p + offset + 1, count: length)
            labels.append(String(decoding: bytes, as: UTF8.self).lowercased())
            offset += 1 + length
        }
        return labels.isEmpty ? "." : labels.joined(separator: ".")
    }
}
