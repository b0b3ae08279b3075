import DNS
import Glibc
import RelayCore
import Rules

/// Filling a record from an answer, on the datapath: no allocation, no lock, no syscall beyond
/// one vDSO clock read; a full ring drops the record and counts it.
extension QueryLogRing {
    /// Logs the answer in `answer` (its question names the query) sent to `client`, who asked
    /// `server`. `receivedAt` is the monotonic time (ns) the query arrived; `rule` is where the
    /// deciding rule was written (list index `.max`: none).
    @inline(__always)
    package func recordAnswer(_ answer: UnsafeRawBufferPointer, proto: QueryLogRecord.Proto, client: Endpoint, server: Endpoint,
                              action: QueryLogRecord.Action, upstream: Endpoint?, rule: (list: UInt16, line: UInt32), receivedAt: UInt64,
                              local: Bool = false, identity: IPPrefix? = nil) {
        guard answer.count >= DNSHeader.size, let (slot, name) = reserve() else { return }
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let monotonic = UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
        let micros = monotonic > receivedAt ? (monotonic - receivedAt) / 1000 : 0
        let p = answer.baseAddress!
        slot.pointee.time = wallMicros(atMonotonic: monotonic) &- micros
        slot.pointee.durationMicros = UInt32(min(micros, UInt64(UInt32.max)))
        slot.pointee.proto = proto
        slot.pointee.action = action
        slot.pointee.rcode = UInt8(DNSHeader.flags(p) & DNSHeader.rcodeMask)
        slot.pointee.client = client
        slot.pointee.local = local
        slot.pointee.server = server
        slot.pointee.upstream = upstream
        slot.pointee.identity = identity
        slot.pointee.ruleList = rule.list
        slot.pointee.ruleLine = rule.line
        slot.pointee.answerCount = 0
        slot.pointee.otherAnswers = 0
        if DNSHeader.questionCount(p) == 1, let end = Question.end(in: answer),
           let length = DomainName.fromWire(answer, into: name) {
            slot.pointee.nameLength = UInt8(length)
            slot.pointee.qtype = Question.type(in: answer, end: end)
            RecordWalker.answersOfCheckedMessage(answer, questionEnd: end) { r in
                let count = Int(slot.pointee.answerCount)
                if (r.type == 1 && r.dataLength == 4) || (r.type == 28 && r.dataLength == 16), count < QueryLogRecord.maxAnswers {
                    let address: IPAddress
                    if r.type == 1 {
                        address = .v4(IPv4Address(rawValue: (p + r.dataOffset).loadUnaligned(as: UInt32.self)))
                    } else {
                        address = .v6(IPv6Address(high: (p + r.dataOffset).loadUnaligned(as: UInt64.self),
                                                  low: (p + r.dataOffset + 8).loadUnaligned(as: UInt64.self)))
                    }
                    switch count {
                    case 0: slot.pointee.answers.0 = address
                    case 1: slot.pointee.answers.1 = address
                    case 2: slot.pointee.answers.2 = address
                    default: slot.pointee.answers.3 = address
                    }
                    slot.pointee.answerCount += 1
                } else {
                    slot.pointee.otherAnswers &+= 1
                }
            }
        } else {
            slot.pointee.nameLength = 0
            slot.pointee.qtype = 0
        }
        commit()
    }
}
