import DNS
import RelayCore

/// A datagram from a client: classified, and when it is a query, every answer the relay builds
/// in its buffer (FORMERR, NOTIMP, an rcode with OPT, truncation) is built from it, and the ECS
/// option `subnet` puts in is added, replaced or kept: the result must still be a query with the
/// same question, and stripping the option again must leave one too.
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
                clientSubnet(data, query: query)
            case .formatError:
                _ = ResponseBuilder.formatError(in: out)
            case .notImplemented:
                _ = ResponseBuilder.headerOnly(rcode: .notImplemented, in: out)
            case .drop:
                break
            }
        }
    }

    static let subnet = IPPrefix(address: .v4(IPv4Address(10, 53, 1, 77)), length: 24)

    static func clientSubnet(_ data: UnsafeRawBufferPointer, query: ParsedQuery) {
        _ = ClientSubnet.carried(in: data, questionEnd: query.questionEnd)
        var buffer = [UInt8](data) + [UInt8](repeating: 0, count: 4096)
        for keep in [false, true] {
            let applied = buffer.withUnsafeMutableBytes {
                ClientSubnet.apply(subnet, to: $0, length: data.count, questionEnd: query.questionEnd, keepExisting: keep)
            }
            guard case .set(let length, let addedOPT) = applied else { continue }
            buffer.withUnsafeMutableBytes { out in
                let message = UnsafeRawBufferPointer(rebasing: out[0..<length])
                guard case .query(let again) = QueryParser.classify(message), again.questionEnd == query.questionEnd else {
                    preconditionFailure("ECS broke the query")
                }
                precondition(ClientSubnet.carried(in: message, questionEnd: again.questionEnd))
                let back = addedOPT ? ClientSubnet.removeOPT(out, length: length, questionEnd: again.questionEnd)
                                    : ClientSubnet.strip(out, length: length, questionEnd: again.questionEnd)
                guard case .query = QueryParser.classify(UnsafeRawBufferPointer(rebasing: out[0..<back])) else {
                    preconditionFailure("taking ECS out broke the query")
                }
            }
            return
        }
    }
}
