import DNS

/// A datagram from a client: classified, and when it is a query, every answer the relay builds
/// in its buffer (FORMERR, NOTIMP, an rcode with OPT, truncation) is built from it.
enum QueryTarget {
    @Sendable static func run(_ data: UnsafeRawBufferPointer) {
        let verdict = QueryParser.classify(data)
        var buffer = [UInt8](data) + [UInt8](repeating: 0, count: 64)
        buffer.withUnsafeMutableBytes { out in
            switch verdict {
            case .query(let query):
                precondition(query.questionEnd <= data.count)
                _ = ResponseBuilder.answer(rcode: .refused, in: out, questionEnd: query.questionEnd, withOPT: query.hasEDNS)
                _ = ResponseBuilder.truncate(in: UnsafeMutableRawBufferPointer(rebasing: out[0..<data.count]), withOPT: query.hasEDNS)
                _ = Question.name(in: data)
            case .formatError:
                _ = ResponseBuilder.formatError(in: out)
            case .notImplemented:
                _ = ResponseBuilder.headerOnly(rcode: .notImplemented, in: out)
            case .drop:
                break
            }
        }
    }
}
