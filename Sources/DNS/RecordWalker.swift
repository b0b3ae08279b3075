/// Walks the records of a message after its question, without copying or decompressing: for
/// each record, its section, type, where its TTL sits and where its data lies.
///
/// Every byte comes from the network, so every bound is hard and checked before it is read:
/// a name that runs past the message or past 255 bytes, a label type other than a plain label or
/// a pointer, a compression pointer that does not point strictly backwards (so no loop is
/// possible, RFC 9267 §2), fewer records than the header counts, a data length past the end, and
/// data that does not fit its type (an A record that is not 4 bytes, a CNAME whose name does not
/// fill its data exactly, ...) all stop the walk, and `walk` returns false.
public enum RecordWalker {
    public struct Record {
        /// 0 answer, 1 authority, 2 additional.
        public var section: Int
        /// Offset of the owner name.
        public var nameOffset: Int
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
        guard let p = message.baseAddress, message.count >= DNSHeader.size, questionEnd <= message.count else { return false }
        let answers = Int(DNSHeader.answerCount(p)), authority = Int(DNSHeader.authorityCount(p))
        let additional = Int(DNSHeader.additionalCount(p))
        var offset = questionEnd
        for section in 0..<3 {
            for _ in 0..<(section == 0 ? answers : section == 1 ? authority : additional) {
                guard let afterName = skipName(message, at: offset), afterName + 10 <= message.count else { return false }
                let type = DNSHeader.u16(p, afterName)
                let length = Int(DNSHeader.u16(p, afterName + 8))
                let data = afterName + 10
                guard data + length <= message.count, dataFits(message, type: type, at: data, length: length) else { return false }
                body(Record(section: section, nameOffset: offset, type: type, ttlOffset: afterName + 4, dataOffset: data, dataLength: length))
                offset = data + length
            }
        }
        return true
    }

    /// Calls `body` for each record of the answer section of a message the relay has already
    /// checked or built (an upstream answer that passed `AnswerCheck`, a cached or a local answer):
    /// for the query log, which only reads them. Names are skipped in place (a pointer ends one)
    /// instead of followed to check the names they complete, which `walk` did already; every
    /// read is still within the message, and anything that does not fit ends the walk early.
    @inline(__always)
    public static func answersOfCheckedMessage(_ message: UnsafeRawBufferPointer, questionEnd: Int, _ body: (Record) -> Void) {
        guard let p = message.baseAddress, message.count >= DNSHeader.size else { return }
        var offset = questionEnd
        for _ in 0..<Int(DNSHeader.answerCount(p)) {
            let start = offset
            while offset < message.count {
                let length = Int(p.load(fromByteOffset: offset, as: UInt8.self))
                if length == 0 { offset += 1; break }
                if length & 0xc0 != 0 { offset += 2; break }
                offset += 1 + length
            }
            guard offset + 10 <= message.count else { return }
            let length = Int(DNSHeader.u16(p, offset + 8))
            let data = offset + 10
            guard data + length <= message.count else { return }
            body(Record(section: 0, nameOffset: start, type: DNSHeader.u16(p, offset), ttlOffset: offset + 4, dataOffset: data, dataLength: length))
            offset = data + length
        }
    }

    /// The offset after a (possibly compressed) name at `start`, or nil when the name is malformed.
    /// Pointers are followed to check the name they complete: each must point strictly before
    /// the pointer itself and after the header, and the whole name must stay within 255 bytes.
    @inline(__always)
    public static func skipName(_ message: UnsafeRawBufferPointer, at start: Int) -> Int? {
        var offset = start
        var total = 0
        var end: Int?  // where the name ends in place (after its first pointer)
        while offset < message.count {
            let length = Int(message[offset])
            if length == 0 { return end ?? offset + 1 }
            if length & 0xc0 == 0xc0 {
                guard offset + 2 <= message.count else { return nil }
                let target = (length & 0x3f) << 8 | Int(message[offset + 1])
                guard target >= DNSHeader.size, target < offset else { return nil }
                if end == nil { end = offset + 2 }
                offset = target
                continue
            }
            guard length <= 63 else { return nil }  // 0x40 and 0x80 label types are not in use
            total += length + 1
            guard total < 256 else { return nil }
            offset += 1 + length
        }
        return nil
    }

    /// Whether a record's data has the shape its type requires, for the types whose shape the
    /// relay or a client relies on: fixed-size addresses, and the types that carry names
    /// (possibly compressed, RFC 3597 §4) where the name must be well formed and end exactly
    /// where its fixed fields begin. Other types are opaque bytes and any length is accepted.
    @inline(__always)
    static func dataFits(_ message: UnsafeRawBufferPointer, type: UInt16, at data: Int, length: Int) -> Bool {
        let end = data + length
        switch type {
        case 1: return length == 4  // A
        case 28: return length == 16  // AAAA
        case 2, 5, 12, 39:  // NS, CNAME, PTR, DNAME: one name
            return skipName(message, at: data) == end
        case 15:  // MX: preference, exchange
            return length > 2 && skipName(message, at: data + 2) == end
        case 33:  // SRV: priority, weight, port, target
            return length > 6 && skipName(message, at: data + 6) == end
        case 6:  // SOA: mname, rname, then five 32-bit fields
            guard let afterM = skipName(message, at: data), afterM < end, let afterR = skipName(message, at: afterM) else { return false }
            return afterR + 20 == end
        default:
            return true
        }
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
