/// What the relay makes of a datagram that arrived on a DNS listener.
public enum QueryVerdict: Equatable, Sendable {
    /// A well-formed query to forward: its question ends at `questionEnd`.
    case query(ParsedQuery)
    /// The header is readable but the rest is not, or it is not a single-question query:
    /// answer FORMERR. The reason is for counters and logs.
    case formatError(FormatErrorReason)
    /// An opcode other than QUERY (0): answer NOTIMP, header only.
    case notImplemented(opcode: UInt8)
    /// Not answerable: shorter than a header, or a response (QR=1) that must never be
    /// answered or forwarded (it could start a loop).
    case drop(DropReason)
}

/// Facts about a parsed query that the datapath needs.
public struct ParsedQuery: Equatable, Sendable {
    /// Offset just past the question (QTYPE, QCLASS).
    public var questionEnd: Int
    /// QTYPE.
    public var type: UInt16
    /// Whether the query carries an OPT record (EDNS0).
    public var hasEDNS: Bool
    /// The client's advertised UDP payload size (512 without EDNS).
    public var udpPayloadSize: Int
    /// What besides the question changes an answer, for the cache key: bit 0 DO (RFC 3225),
    /// bit 1 CD (RFC 4035).
    public var cacheFlags: UInt8 = 0

    public init(questionEnd: Int, type: UInt16, hasEDNS: Bool, udpPayloadSize: Int, cacheFlags: UInt8 = 0) {
        self.questionEnd = questionEnd
        self.type = type
        self.hasEDNS = hasEDNS
        self.udpPayloadSize = udpPayloadSize
        self.cacheFlags = cacheFlags
    }
}

public enum FormatErrorReason: String, Sendable {
    case unparsable = "message does not parse"
    case questionCount = "question count is not 1"
}

public enum DropReason: String, Sendable {
    case tooShort = "shorter than a DNS header"
    case isResponse = "QR=1 (a response, not a query)"
}

/// Parses queries from the network with hard bounds and no allocation: the header, the single
/// question, then every record of the other sections (`RecordWalker`), among them the OPT record
/// (RFC 6891). ldns is not used here: its parser allocates per message and has leaked on crafted
/// input (two TSIG records, issue 13); the relay only needs these few facts.
public enum QueryParser {
    /// Classifies one datagram or TCP message.
    public static func classify(_ message: UnsafeRawBufferPointer) -> QueryVerdict {
        guard message.count >= DNSHeader.size, let base = message.baseAddress else { return .drop(.tooShort) }
        if DNSHeader.isResponse(base) { return .drop(.isResponse) }
        // Only QUERY is relayed: NOTIFY, UPDATE, STATUS and unassigned opcodes get NOTIMP, as a
        // resolver answers them (a cached QUERY answer must never answer another opcode).
        let opcode = (DNSHeader.flags(base) & DNSHeader.opcodeMask) >> 11
        if opcode != 0 { return .notImplemented(opcode: UInt8(opcode)) }
        if DNSHeader.questionCount(base) != 1 { return .formatError(.questionCount) }
        // A compression pointer in the question is refused: a query's first name has nothing
        // earlier to point to, and the relay's byte-level view of the question relies on that.
        guard let end = Question.end(in: message) else { return .formatError(.unparsable) }
        var optCount = 0
        var optOffset = 0
        var optOwnerIsRoot = true
        let wellFormed = RecordWalker.walk(message, questionEnd: end) { record in
            if record.type == 41 && record.section == 2 {
                optCount += 1
                optOffset = record.ttlOffset
                optOwnerIsRoot = message[record.nameOffset] == 0
            }
        }
        guard wellFormed else { return .formatError(.unparsable) }
        // RFC 6891 §6.1.1: more than one OPT record is a format error, and its owner is the root.
        guard optCount <= 1, optOwnerIsRoot else { return .formatError(.unparsable) }
        let hasEDNS = optCount == 1
        // The OPT record's CLASS is the requestor's UDP payload size; below 512 counts as 512.
        let size = hasEDNS ? max(512, Int(DNSHeader.u16(base, optOffset - 2))) : 512
        let doBit = hasEDNS && message[optOffset + 2] & 0x80 != 0
        let flags: UInt8 = (doBit ? 1 : 0) | (DNSHeader.flags(base) & DNSHeader.checkingDisabledFlag != 0 ? 2 : 0)
        return .query(ParsedQuery(questionEnd: end, type: Question.type(in: message, end: end),
                                  hasEDNS: hasEDNS, udpPayloadSize: size, cacheFlags: flags))
    }
}
