/// Walks the records of a message after its question, without copying or decompressing: for
/// each record, its section, type, where its TTL sits and where its data lies. Bounds are hard:
/// a name that runs past the message, a pointer loop or a length beyond the end stops the walk
/// and `walk` returns false.
public enum RecordWalker {
    public struct Record {
        /// 0 answer, 1 authority, 2 additional.
        public var section: Int
        public var type: UInt16
        /// Offset of the 32-bit TTL.
        public var ttlOffset: Int
        public var dataOffset: Int
        public var dataLength: Int
    }

    /// Calls `body` for every record (the question, at `questionEnd`, is skipped). Returns false
    /// when the message is malformed (body may have seen some records).
    @inline(__always)
    public static func walk(_ message: UnsafeRawBufferPointer, questionEnd: Int, _ body: (Record) -> Void) -> Bool {
        guard let p = message.baseAddress, message.count >= DNSHeader.size else { return false }
        let answers = Int(DNSHeader.answerCount(p)), authority = Int(DNSHeader.authorityCount(p))
        let additional = Int(DNSHeader.additionalCount(p))
        var offset = questionEnd
        for section in 0..<3 {
            for _ in 0..<(section == 0 ? answers : section == 1 ? authority : additional) {
                guard let afterName = skipName(message, at: offset), afterName + 10 <= message.count else { return false }
                let type = DNSHeader.u16(p, afterName)
                let length = Int(DNSHeader.u16(p, afterName + 8))
                guard afterName + 10 + length <= message.count else { return false }
                body(Record(section: section, type: type, ttlOffset: afterName + 4, dataOffset: afterName + 10, dataLength: length))
                offset = afterName + 10 + length
            }
        }
        return true
    }

    /// The offset after a (possibly compressed) name at `offset`; a pointer ends the name.
    @inline(__always)
    static func skipName(_ message: UnsafeRawBufferPointer, at start: Int) -> Int? {
        var offset = start
        var total = 0
        while offset < message.count {
            let length = Int(message[offset])
            if length == 0 { return offset + 1 }
            if length & 0xc0 == 0xc0 { return offset + 2 <= message.count ? offset + 2 : nil }
            guard length <= 63 else { return nil }
            total += length + 1
            guard total < 256 else { return nil }
            offset += 1 + length
        }
        return nil
    }

    /// The 32-bit value at `offset` (a TTL or the SOA minimum).
    @inline(__always)
    public static func u32(_ message: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(DNSHeader.u16(message.baseAddress!, offset)) << 16 | UInt32(DNSHeader.u16(message.baseAddress!, offset + 2))
    }

    @inline(__always)
    public static func setU32(_ message: UnsafeMutableRawBufferPointer, _ offset: Int, _ value: UInt32) {
        DNSHeader.setU16(message.baseAddress!, offset, UInt16(value >> 16))
        DNSHeader.setU16(message.baseAddress!, offset + 2, UInt16(value & 0xffff))
    }
}
