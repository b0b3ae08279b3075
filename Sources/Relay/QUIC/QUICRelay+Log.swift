import Glibc
import QueryLog

/// The query log's entries for a QUIC flow: its SNI (or why none was read), version, decision,
/// rule and bytes each way. One when the flow is decided (the SNI read, the hold given up, or
/// blocked outright: `tail -f` shows it at once), and one with `"event":"end"` and the final
/// bytes and duration when it ends. A flow blocked after it was relaying (a later ClientHello)
/// gets a second decision entry.
extension QUICRelay {
    func recordFlow(_ flow: QUICFlow, now: UInt64, end: Bool = false) {
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
        slot.pointee.flowEnd = end
        slot.pointee.local = !localAddresses.isEmpty && localAddresses.contains(flow.key.client.address)
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

    static func wallMicros() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
    }
}
