import RelayCore

/// One query-log entry as a worker hands it over: fixed size, no references, so a worker fills it
/// in place in its ring without allocating. The writer thread turns it into a JSON line.
package struct QueryLogRecord {
    package enum Action: UInt8 {
        case allowed, blocked, rewritten, local, cached, dropped, error
    }

    package enum Proto: UInt8 {
        case udp, tcp, quic
    }

    package static let maxAnswers = 4
    package static let maxName = 255

    /// Wall-clock time the query arrived, µs since the epoch.
    package var time: UInt64 = 0
    package var durationMicros: UInt32 = 0
    package var proto: Proto = .udp
    package var action: Action = .allowed
    package var rcode: UInt8 = 0
    package var qtype: UInt16 = 0
    package var client = Endpoint(address: .anyV4, port: 0)
    /// The address the client asked.
    package var server = Endpoint(address: .anyV4, port: 0)
    /// The upstream that answered, when one did.
    package var upstream: Endpoint?
    /// What that upstream saw of the client (`upstream.client_identity`): the client's own
    /// address (a /32 or /128: `source`) or its subnet (`subnet`); nil for none.
    package var identity: IPPrefix?
    /// The deciding rule (list index in `filters.lists`, 1-based line), when one decided.
    package var ruleList: UInt16 = .max
    package var ruleLine: UInt32 = 0
    /// A and AAAA addresses from the answer (the first four), and how many records there were.
    package var answerCount: UInt8 = 0
    package var answers: (IPAddress, IPAddress, IPAddress, IPAddress) = (.anyV4, .anyV4, .anyV4, .anyV4)
    package var otherAnswers: UInt8 = 0
    package var nameLength: UInt8 = 0
    // QUIC flows (proto .quic): the name is the SNI.
    package var quicVersion: UInt32 = 0
    /// Why no SNI was read (SNIFailure.Code's raw value + 1; 0: an SNI was read, or not tried).
    package var sniFailure: UInt8 = 0
    package var bytesUp: UInt64 = 0
    package var bytesDown: UInt64 = 0
    /// A flow's second entry, written when it ends (`"event":"end"`, with its final bytes and
    /// duration); the first is written when the flow is decided.
    package var flowEnd = false
    /// The query came from this host itself (`intercept.local`): `"origin":"local"`.
    package var local = false

    package init() {}
}
