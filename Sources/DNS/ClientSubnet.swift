import RelayCore

/// The EDNS Client Subnet option (RFC 7871) in messages the relay forwards and receives, edited
/// in place with hard bounds and no allocation.
///
/// The option sits in the OPT record's data (RFC 6891 §6.1.2): code 8, length, then FAMILY (1
/// IPv4, 2 IPv6), SOURCE PREFIX-LENGTH, SCOPE PREFIX-LENGTH and the address cut to
/// ⌈source / 8⌉ bytes with the bits past the prefix zero (§6). Every length comes from the
/// network, so each option header and each option's data is checked against the OPT record's
/// data before it is read; a malformed option list is left alone.
public enum ClientSubnet {
    public static let optionCode: UInt16 = 8
    /// The UDP size an OPT record the relay adds announces (RFC 9715's safe default).
    static let addedPayloadSize: UInt16 = 1232

    /// What `apply` did.
    public enum Applied: Equatable, Sendable {
        /// The message now carries the client's subnet; its new length, and whether an OPT record
        /// had to be added for it (the client sent none: its answer must not carry one).
        case set(length: Int, addedOPT: Bool)
        /// The message carried its own ECS option and `keepExisting` kept it untouched.
        case keptClients
        /// Nothing was changed: no room, an option list that does not parse, a signed message
        /// (TSIG or SIG(0) must stay last and cover every byte), or records after the OPT record.
        case unchanged
    }

    /// Puts an ECS option for `subnet` into the message in the first `length` bytes of `buffer`
    /// (its question ends at `questionEnd`): an OPT record is added when there is none, and an ECS
    /// option already there is replaced, or kept when `keepExisting`.
    public static func apply(_ subnet: IPPrefix, to buffer: UnsafeMutableRawBufferPointer, length: Int, questionEnd: Int,
                             keepExisting: Bool) -> Applied {
        guard let opt = OPTRecord.find(UnsafeRawBufferPointer(rebasing: buffer[0..<length]), questionEnd: questionEnd) else { return .unchanged }
        if opt.signed || opt.followed { return .unchanged }
        let optionLength = 4 + 4 + (subnet.length + 7) / 8
        var length = length
        let rdataEnd: Int
        if let data = opt.data {
            guard let options = OptionList(UnsafeRawBufferPointer(rebasing: buffer[0..<length]), data: data) else { return .unchanged }
            if options.ecs != nil && keepExisting { return .keptClients }
            let replaced = options.ecs?.count ?? 0
            let rdataLength = data.count - replaced
            guard length - replaced + optionLength <= buffer.count, rdataLength + optionLength <= 0xffff else { return .unchanged }
            if let ecs = options.ecs {
                // Out with the client's option: everything after it moves up.
                remove(ecs, from: buffer, length: &length)
            }
            rdataEnd = data.lowerBound + rdataLength
            DNSHeader.setU16(buffer.baseAddress!, data.lowerBound - 2, UInt16(rdataLength + optionLength))
        } else {
            // No OPT record: one is added at the end, with only this option. Not when bytes
            // follow the last record: a name's pointer may lead into them, and a record written
            // over them would change that name.
            guard opt.recordsEnd == length, length + 11 + optionLength <= buffer.count else { return .unchanged }
            let p = buffer.baseAddress!
            p.storeBytes(of: 0, toByteOffset: length, as: UInt8.self)  // the root name
            DNSHeader.setU16(p, length + 1, 41)
            DNSHeader.setU16(p, length + 3, addedPayloadSize)
            DNSHeader.setU16(p, length + 5, 0)
            DNSHeader.setU16(p, length + 7, 0)
            DNSHeader.setU16(p, length + 9, UInt16(optionLength))
            DNSHeader.setU16(p, 10, DNSHeader.additionalCount(p) + 1)
            length += 11
            rdataEnd = length
        }
        // The option goes at the end of the OPT data, the end of the message (nothing follows).
        write(subnet, at: rdataEnd, in: buffer)
        return .set(length: length + optionLength, addedOPT: opt.data == nil)
    }

    /// The SCOPE PREFIX-LENGTH of the ECS option in an answer; nil when it carries none (RFC 7871
    /// §7.3: treated as scope 0, valid for every client) or its options do not parse.
    public static func scope(in message: UnsafeRawBufferPointer, questionEnd: Int) -> Int? {
        guard let opt = OPTRecord.find(message, questionEnd: questionEnd), let data = opt.data,
              let ecs = OptionList(message, data: data)?.ecs, ecs.count >= 8 else { return nil }
        return Int(message[ecs.lowerBound + 7])
    }

    /// Removes the ECS option from the message in the first `length` bytes of `buffer`; the new
    /// length (the same when there is none, or records follow the OPT record).
    public static func strip(_ buffer: UnsafeMutableRawBufferPointer, length: Int, questionEnd: Int) -> Int {
        let message = UnsafeRawBufferPointer(rebasing: buffer[0..<length])
        guard let opt = OPTRecord.find(message, questionEnd: questionEnd), !opt.signed, !opt.followed, let data = opt.data,
              let ecs = OptionList(message, data: data)?.ecs else { return length }
        var length = length
        remove(ecs, from: buffer, length: &length)
        DNSHeader.setU16(buffer.baseAddress!, data.lowerBound - 2, UInt16(data.count - ecs.count))
        return length
    }

    /// Removes the OPT record from the message in the first `length` bytes of `buffer` (an answer
    /// to a client that sent none, RFC 6891 §7); the new length (the same when there is none, or
    /// it is not the last record).
    public static func removeOPT(_ buffer: UnsafeMutableRawBufferPointer, length: Int, questionEnd: Int) -> Int {
        let message = UnsafeRawBufferPointer(rebasing: buffer[0..<length])
        var record: Range<Int>?
        let wellFormed = RecordWalker.walk(message, questionEnd: questionEnd) { r in
            if r.section == 2 && r.type == 41 && record == nil { record = r.nameOffset..<(r.dataOffset + r.dataLength) }
        }
        // Only the last record is removed: moving what follows could break its compression pointers.
        guard wellFormed, let record, record.upperBound == length else { return length }
        var length = length
        remove(record, from: buffer, length: &length)
        let p = buffer.baseAddress!
        DNSHeader.setU16(p, 10, DNSHeader.additionalCount(p) - 1)
        return length
    }

    /// Whether the query in `message` carries an ECS option of its own.
    public static func carried(in message: UnsafeRawBufferPointer, questionEnd: Int) -> Bool {
        guard let opt = OPTRecord.find(message, questionEnd: questionEnd), let data = opt.data else { return false }
        return OptionList(message, data: data)?.ecs != nil
    }

    /// Writes the option for `subnet` at `offset`.
    private static func write(_ subnet: IPPrefix, at offset: Int, in buffer: UnsafeMutableRawBufferPointer) {
        let p = buffer.baseAddress!
        let addressBytes = (subnet.length + 7) / 8
        DNSHeader.setU16(p, offset, optionCode)
        DNSHeader.setU16(p, offset + 2, UInt16(4 + addressBytes))
        DNSHeader.setU16(p, offset + 4, subnet.address.isIPv6 ? 2 : 1)
        p.storeBytes(of: UInt8(subnet.length), toByteOffset: offset + 6, as: UInt8.self)
        p.storeBytes(of: 0, toByteOffset: offset + 7, as: UInt8.self)
        // The prefix's address already has its host bits cleared (IPPrefix).
        switch subnet.address {
        case .v4(let a): withUnsafeBytes(of: a.rawValue) { (p + offset + 8).copyMemory(from: $0.baseAddress!, byteCount: addressBytes) }
        case .v6(let a):
            withUnsafeBytes(of: (a.high, a.low)) { (p + offset + 8).copyMemory(from: $0.baseAddress!, byteCount: addressBytes) }
        }
    }

    private static func remove(_ range: Range<Int>, from buffer: UnsafeMutableRawBufferPointer, length: inout Int) {
        let p = buffer.baseAddress!
        (p + range.lowerBound).copyMemory(from: p + range.upperBound, byteCount: length - range.upperBound)
        length -= range.count
    }

    /// Where a message's OPT record is.
    struct OPTRecord {
        /// The OPT record's data (its options); nil when the message has no OPT record.
        var data: Range<Int>?
        /// A TSIG (250) or SIG(0) (24) record is present.
        var signed: Bool
        /// Whether bytes follow the OPT record. Then it is never edited: moving them would
        /// break any compression pointer among them that points past the OPT record.
        var followed = false
        /// Where the last record ends (the question's end when there is none).
        var recordsEnd = 0

        /// nil when the message's records do not parse.
        static func find(_ message: UnsafeRawBufferPointer, questionEnd: Int) -> OPTRecord? {
            var found = OPTRecord(data: nil, signed: false)
            found.recordsEnd = questionEnd
            let wellFormed = RecordWalker.walk(message, questionEnd: questionEnd) { record in
                found.recordsEnd = record.dataOffset + record.dataLength
                guard record.section == 2 else { return }
                if record.type == 41 && found.data == nil { found.data = record.dataOffset..<(record.dataOffset + record.dataLength) }
                if record.type == 250 || record.type == 24 { found.signed = true }
            }
            if let data = found.data { found.followed = data.upperBound != message.count }
            return wellFormed ? found : nil
        }
    }

    /// The options of an OPT record, walked with every length checked.
    struct OptionList {
        /// The whole ECS option (its code and length included), if there is one.
        var ecs: Range<Int>?

        /// nil when an option runs past the OPT data or there are two ECS options.
        init?(_ message: UnsafeRawBufferPointer, data: Range<Int>) {
            var offset = data.lowerBound
            while offset < data.upperBound {
                guard offset + 4 <= data.upperBound else { return nil }
                let code = DNSHeader.u16(message.baseAddress!, offset)
                let size = Int(DNSHeader.u16(message.baseAddress!, offset + 2))
                guard offset + 4 + size <= data.upperBound else { return nil }
                if code == ClientSubnet.optionCode {
                    // RFC 7871 §7.1.1 (a query with two is malformed, FORMERR upstream anyway).
                    guard ecs == nil else { return nil }
                    ecs = offset..<(offset + 4 + size)
                }
                offset += 4 + size
            }
        }
    }
}
