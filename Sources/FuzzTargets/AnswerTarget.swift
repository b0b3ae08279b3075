import DNS

/// An answer from upstream, held against the query in flight for www.lab.test A: the RFC 5452
/// question match, the whole-message check with TTL clamping, truncation for a small client, the
/// record walk the cache and log make, an alias answer composed from it (ldns), and the ECS
/// option's scope read and the option (or the whole OPT record) taken out: still a sound answer.
enum AnswerTarget {
    static let query: [UInt8] = QueryBuilder.query(name: "www.lab.test", type: 1, id: 0x4242)!
    static let questionEnd = 12 + 14 + 4

    @Sendable static func run(_ data: UnsafeRawBufferPointer) {
        guard data.count >= DNSHeader.size else { return }
        let matches = query.withUnsafeBytes { Question.matches(query: $0, end: questionEnd, response: data) }
        var answer = [UInt8](data)
        let end = matches ? questionEnd : (Question.end(in: data) ?? DNSHeader.size)
        let sound = answer.withUnsafeMutableBytes { AnswerCheck.check($0, questionEnd: end, maxTTL: 86_400) }
        answer.withUnsafeBytes { bytes in
            _ = RecordWalker.walk(bytes, questionEnd: end) { record in
                precondition(record.dataOffset + record.dataLength <= bytes.count)
            }
        }
        if sound {
            _ = answer.withUnsafeBytes { ClientSubnet.scope(in: $0, questionEnd: end) }
            // A sound answer stays sound: checked again as it is (the cached copy is), and with
            // the ECS option, or the whole OPT record, taken out (what a client gets).
            var again = answer
            precondition(again.withUnsafeMutableBytes { AnswerCheck.check($0, questionEnd: end, maxTTL: 86_400) },
                         "a second check disagrees with the first")
            for wholeOPT in [false, true] {
                var copy = answer
                copy.withUnsafeMutableBytes { out in
                    let length = wholeOPT ? ClientSubnet.removeOPT(out, length: out.count, questionEnd: end)
                                          : ClientSubnet.strip(out, length: out.count, questionEnd: end)
                    precondition(AnswerCheck.check(UnsafeMutableRawBufferPointer(rebasing: out[0..<length]), questionEnd: end, maxTTL: 86_400),
                                 "taking ECS out broke the answer")
                }
            }
            _ = answer.withUnsafeBytes { upstream in
                query.withUnsafeBytes { original in
                    AliasAnswer.compose(original: UnsafeRawBufferPointer(rebasing: original[0..<questionEnd]), target: "target.lab.test",
                                        ttl: 10, upstream: upstream, withOPT: false)
                }
            }
        }
        _ = answer.withUnsafeMutableBytes { ResponseBuilder.truncate(in: $0) }
    }
}
