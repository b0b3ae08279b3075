import QueryLog

/// Answers one worker sent, by action (as the query log names them), transport and response
/// code, and how long they took, local answers apart from forwarded ones. Fixed size and
/// inline: counting an answer is an index computation and an add.
struct AnswerTally: Sendable {
    static let actionCount = 7
    static let transportCount = 2
    static let rcodeCount = 16

    var answers = InlineArray<224, Int>(repeating: 0)
    /// Answers the relay made itself (zones, rules, cache, errors), from arrival to send.
    var local = LatencyHistogram()
    /// Answers that went upstream, from the client's query to its answer (retries included).
    var forwarded = LatencyHistogram()

    @inline(__always)
    static func index(action: Int, tcp: Bool, rcode: Int) -> Int {
        (action * transportCount + (tcp ? 1 : 0)) * rcodeCount + rcode
    }

    /// Counts one answer (its time goes to `local` or `forwarded` apart: local UDP answers are
    /// timed once per batch, see Worker.receiveQueries).
    @inline(__always)
    mutating func count(action: QueryLogRecord.Action, tcp: Bool, rcode: UInt8) {
        answers[Self.index(action: Int(action.rawValue), tcp: tcp, rcode: Int(rcode & 0x0F))] += 1
    }

    static func + (a: AnswerTally, b: AnswerTally) -> AnswerTally {
        var c = a
        for i in 0..<224 { c.answers[i] += b.answers[i] }
        c.local = a.local + b.local
        c.forwarded = a.forwarded + b.forwarded
        return c
    }
}
