/// What one worker has done since start. A worker owns its counters alone (no sharing, no
/// atomics on the hot path) and publishes a copy a few times a second.
public struct Counters: Equatable, Sendable {
    /// Datagrams read from the DNS listeners.
    public var received = 0
    /// Queries sent upstream (first tries).
    public var forwarded = 0
    /// Upstream answers relayed to clients.
    public var answered = 0
    /// FORMERR answers (header readable, body not, or qdcount ≠ 1).
    public var formatErrors = 0
    /// Dropped: shorter than a header.
    public var droppedShort = 0
    /// Dropped: QR=1 arriving as a query.
    public var droppedResponses = 0
    /// Dropped: longer than the largest query kept.
    public var droppedOversize = 0
    /// Dropped: no original destination in the control data.
    public var droppedNoDestination = 0
    /// Dropped: in-flight table full.
    public var droppedOverload = 0
    /// Upstream datagrams that matched no query in flight (wrong ID, source, port or question).
    public var upstreamMismatches = 0
    /// Upstream tries that timed out.
    public var upstreamTimeouts = 0
    /// Tries sent to the next server after a timeout.
    public var upstreamRetries = 0
    /// SERVFAIL answers after every upstream failed.
    public var serverFailures = 0
    /// REFUSED answers: the query was addressed to the relay's own listener (forwarding would loop).
    public var refusedLoops = 0
    /// Upstream answers larger than the receive buffer, passed on truncated (TC=1).
    public var truncatedAnswers = 0
    /// Replies that could not be sent (no reply socket for the address, or a send error).
    public var replyFailures = 0
    /// Upstream queries that could not be sent.
    public var upstreamSendFailures = 0

    public init() {}

    /// Sums counters of several workers.
    public static func + (a: Counters, b: Counters) -> Counters {
        var c = a
        c.received += b.received
        c.forwarded += b.forwarded
        c.answered += b.answered
        c.formatErrors += b.formatErrors
        c.droppedShort += b.droppedShort
        c.droppedResponses += b.droppedResponses
        c.droppedOversize += b.droppedOversize
        c.droppedNoDestination += b.droppedNoDestination
        c.droppedOverload += b.droppedOverload
        c.upstreamMismatches += b.upstreamMismatches
        c.upstreamTimeouts += b.upstreamTimeouts
        c.upstreamRetries += b.upstreamRetries
        c.serverFailures += b.serverFailures
        c.refusedLoops += b.refusedLoops
        c.truncatedAnswers += b.truncatedAnswers
        c.replyFailures += b.replyFailures
        c.upstreamSendFailures += b.upstreamSendFailures
        return c
    }

    /// `key=value` pairs for one log line, in a fixed order (tests and scripts parse it).
    public var summary: String {
        [("received", received), ("forwarded", forwarded), ("answered", answered), ("formerr", formatErrors),
         ("dropped_short", droppedShort), ("dropped_qr", droppedResponses), ("dropped_oversize", droppedOversize),
         ("dropped_nodst", droppedNoDestination), ("dropped_overload", droppedOverload),
         ("upstream_mismatch", upstreamMismatches), ("upstream_timeout", upstreamTimeouts),
         ("upstream_retry", upstreamRetries), ("servfail", serverFailures), ("refused_loop", refusedLoops),
         ("truncated", truncatedAnswers), ("reply_fail", replyFailures), ("upstream_send_fail", upstreamSendFailures)]
            .map { "\($0.0)=\($0.1)" }.joined(separator: " ")
    }
}
