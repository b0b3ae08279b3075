import Configuration
import DNS
import RelayCore
import Rules

/// The answers rules lead to, written over the query in its buffer: blocks (as
/// `filters.block_with` says), hosts-style addresses, and `$dnsrewrite` codes and records.
public struct RuleAnswers: Sendable {
    public var blockWith: Configuration.BlockResponse
    /// TTL of the answers the relay makes up.
    public var ttl: UInt32

    public init(blockWith: Configuration.BlockResponse, ttl: UInt32) {
        self.blockWith = blockWith
        self.ttl = ttl
    }

    /// The answer to a blocked query.
    @inline(__always)
    func block(_ query: ParsedQuery, in buffer: UnsafeMutableRawBufferPointer) -> Int {
        switch blockWith {
        case .nxdomain:
            return ResponseBuilder.answer(rcode: .nameError, in: buffer, questionEnd: query.questionEnd, withOPT: query.hasEDNS)
        case .refused:
            return ResponseBuilder.answer(rcode: .refused, in: buffer, questionEnd: query.questionEnd, withOPT: query.hasEDNS)
        case .nullIP:
            return address(query.type == 28 ? .anyV6 : .anyV4, query, in: buffer)
        case .address(let address):
            return self.address(address, query, in: buffer)
        }
    }

    /// An A or AAAA answer with `address` when the query asks for its family; otherwise an empty
    /// NOERROR (the name exists, that type does not).
    @inline(__always)
    func address(_ address: IPAddress, _ query: ParsedQuery, in buffer: UnsafeMutableRawBufferPointer) -> Int {
        switch (address, query.type) {
        case (.v4(let a), 1):
            return withUnsafeBytes(of: a.rawValue) {
                ResponseBuilder.addressAnswer(in: buffer, questionEnd: query.questionEnd, address: $0, ttl: ttl, withOPT: query.hasEDNS)
            }
        case (.v6(let a), 28):
            return withUnsafeBytes(of: (a.high, a.low)) {
                ResponseBuilder.addressAnswer(in: buffer, questionEnd: query.questionEnd, address: $0, ttl: ttl, withOPT: query.hasEDNS)
            }
        default:
            return ResponseBuilder.answer(rcode: .noError, in: buffer, questionEnd: query.questionEnd, withOPT: query.hasEDNS)
        }
    }

    /// A `$dnsrewrite` response code.
    func rcode(_ code: UInt8, _ query: ParsedQuery, in buffer: UnsafeMutableRawBufferPointer) -> Int {
        ResponseBuilder.answer(rcode: ResponseCode(rawValue: UInt16(code)), in: buffer, questionEnd: query.questionEnd, withOPT: query.hasEDNS)
    }

    /// A NOERROR answer with every `$dnsrewrite` record of the query's type (none: NODATA), cut
    /// with TC=1 past `limit` bytes.
    func records(name: UnsafeRawBufferPointer, rules: RuleSet, client: IPAddress?, lists: ListMask, _ query: ParsedQuery,
                 in buffer: UnsafeMutableRawBufferPointer, limit: Int) -> Int {
        let room = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<min(buffer.count, max(limit, 512))])
        var offset = ResponseBuilder.beginAnswer(rcode: .noError, in: room, questionEnd: query.questionEnd)
        var truncated = false
        let ttl = ttl
        rules.forEachRewriteRecord(name: name, type: query.type, client: client, lists: lists) { type, rdata in
            guard !truncated else { return }
            let next = rdata.withUnsafeBytes { ResponseBuilder.appendRecord(in: room, at: offset, type: type, ttl: ttl, rdata: $0) }
            if let next { offset = next } else { truncated = true }
        }
        if truncated {
            return ResponseBuilder.truncate(in: room, withOPT: query.hasEDNS) ?? query.questionEnd
        }
        return ResponseBuilder.finishAnswer(in: room, at: offset, withOPT: query.hasEDNS)
    }
}
