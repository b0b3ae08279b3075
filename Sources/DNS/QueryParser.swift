import CLDNS

/// What the relay makes of a datagram that arrived on a DNS listener.
public enum QueryVerdict: Equatable, Sendable {
    /// A well-formed query to forward: its question ends at `questionEnd`.
    case query(ParsedQuery)
    /// The header is readable but the rest is not, or it is not a single-question query:
    /// answer FORMERR. The reason is for counters and logs.
    case formatError(FormatErrorReason)
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

/// Parses queries with ldns (RFC 1035 wire format, EDNS0); the only user of ldns is this module.
public enum QueryParser {
    /// Classifies one datagram. Allocation happens only inside ldns (which needs it to parse).
    public static func classify(_ message: UnsafeRawBufferPointer) -> QueryVerdict {
        guard message.count >= DNSHeader.size, let base = message.baseAddress else { return .drop(.tooShort) }
        if DNSHeader.isResponse(base) { return .drop(.isResponse) }
        if DNSHeader.questionCount(base) != 1 { return .formatError(.questionCount) }

        var packet: UnsafeMutablePointer<ldns_pkt>?
        let status = ldns_wire2pkt(&packet, base.assumingMemoryBound(to: UInt8.self), message.count)
        guard status == LDNS_STATUS_OK, let packet else { return .formatError(.unparsable) }
        defer { ldns_pkt_free(packet) }
        // ldns accepts a question name with a compression pointer; the relay's byte-level view
        // (used for matching and for building answers) does not, so both must agree.
        guard ldns_pkt_qdcount(packet) == 1, let end = Question.end(in: message) else {
            return .formatError(.unparsable)
        }
        let hasEDNS = ldns_pkt_edns(packet)
        let size = hasEDNS ? max(512, Int(ldns_pkt_edns_udp_size(packet))) : 512
        let flags: UInt8 = (hasEDNS && ldns_pkt_edns_do(packet) ? 1 : 0) | (DNSHeader.flags(base) & DNSHeader.checkingDisabledFlag != 0 ? 2 : 0)
        return .query(ParsedQuery(questionEnd: end, type: Question.type(in: message, end: end),
                                  hasEDNS: hasEDNS, udpPayloadSize: size, cacheFlags: flags))
    }
}
