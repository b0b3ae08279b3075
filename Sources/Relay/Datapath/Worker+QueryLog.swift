import DNS
import Glibc
import RelayCore
import Rules

/// The query log on the datapath: one record per answered query, put in this worker's ring
/// (Relay/QueryLog) where the writer thread picks it up. No allocation, no lock, no syscall
/// beyond two vDSO clock reads; a full ring drops the record and counts it.
extension Worker {
    /// Which rule decided, as (list, line), or none.
    typealias RuleOrigin = (list: UInt16, line: UInt32)
    static let noRule: RuleOrigin = (.max, 0)

    /// Logs the answer in `answer` (its question names the query) sent to `client`, who asked
    /// `server`. `receivedAt` is the monotonic time the query arrived.
    @inline(__always)
    func record(_ answer: UnsafeRawBufferPointer, proto: QueryLogRecord.Proto, client: Endpoint, server: Endpoint,
                action: QueryLogRecord.Action, upstream: Endpoint? = nil, rule: RuleOrigin = Worker.noRule, receivedAt: UInt64) {
        guard let ring = queryLog, answer.count >= DNSHeader.size, let (slot, name) = ring.reserve() else { return }
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let monotonic = UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
        clock_gettime(CLOCK_REALTIME, &ts)
        let wall = UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
        let micros = monotonic > receivedAt ? (monotonic - receivedAt) / 1000 : 0
        let p = answer.baseAddress!
        slot.pointee.time = wall - micros
        slot.pointee.durationMicros = UInt32(min(micros, UInt64(UInt32.max)))
        slot.pointee.proto = proto
        slot.pointee.action = action
        slot.pointee.rcode = UInt8(DNSHeader.flags(p) & DNSHeader.rcodeMask)
        slot.pointee.client = client
        slot.pointee.server = server
        slot.pointee.upstream = upstream
        slot.pointee.ruleList = rule.list
        slot.pointee.ruleLine = rule.line
        slot.pointee.answerCount = 0
        slot.pointee.otherAnswers = 0
        if DNSHeader.questionCount(p) == 1, let end = Question.end(in: answer),
           let length = DomainName.fromWire(answer, into: name) {
            slot.pointee.nameLength = UInt8(length)
            slot.pointee.qtype = Question.type(in: answer, end: end)
            _ = RecordWalker.walk(answer, questionEnd: end) { r in
                guard r.section == 0 else { return }
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
        ring.commit()
    }

    /// The origin of the rule the last `filter` call matched.
    @inline(__always)
    var decidedOrigin: RuleOrigin { decidedRule == .max ? Worker.noRule : rules.origin(of: decidedRule) }
}

extension Worker {
    /// Logs a QUIC flow: its SNI (or why none was read), version, decision and bytes each way.
    /// Called once per flow: when it is blocked, or when it ends.
    func recordFlow(_ flow: QUICFlow, now: UInt64) {
        flow.logged = true
        guard let ring = queryLog, let (slot, name) = ring.reserve() else { return }
        let micros = now > flow.startedAt ? (now - flow.startedAt) / 1000 : 0
        slot.pointee.time = flow.startedWall
        slot.pointee.durationMicros = UInt32(min(micros, UInt64(UInt32.max)))
        slot.pointee.proto = .quic
        slot.pointee.action = flow.action
        slot.pointee.rcode = 0
        slot.pointee.qtype = 0
        slot.pointee.client = flow.key.client
        slot.pointee.server = flow.key.destination
        slot.pointee.upstream = nil
        slot.pointee.ruleList = flow.rule.list
        slot.pointee.ruleLine = flow.rule.line
        slot.pointee.answerCount = 0
        slot.pointee.otherAnswers = 0
        slot.pointee.quicVersion = flow.version
        slot.pointee.sniFailure = flow.serverName == nil ? (flow.sniFailure.map { $0.rawValue + 1 } ?? 0) : 0
        slot.pointee.bytesUp = flow.bytesUp
        slot.pointee.bytesDown = flow.bytesDown
        var length = 0
        if let sni = flow.serverName {
            for byte in sni.utf8.prefix(min(name.count, QueryLogRecord.maxName)) {
                name[length] = byte
                length += 1
            }
        }
        slot.pointee.nameLength = UInt8(length)
        ring.commit()
    }
}
