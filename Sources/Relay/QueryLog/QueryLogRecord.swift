import RelayCore

/// One query-log entry as a worker hands it over: fixed size, no references, so a worker fills it
/// in place in its ring without allocating. The writer thread turns it into a JSON line.
struct QueryLogRecord {
    enum Action: UInt8 {
        case allowed, blocked, rewritten, local, cached, dropped, error

        var name: String {
            switch self {
            case .allowed: return "allowed"
            case .blocked: return "blocked"
            case .rewritten: return "rewritten"
            case .local: return "local"
            case .cached: return "cached"
            case .dropped: return "dropped"
            case .error: return "error"
            }
        }
    }

    enum Proto: UInt8 {
        case udp, tcp, quic
        var name: String { self == .udp ? "udp" : self == .tcp ? "tcp" : "quic" }
    }

    static let maxAnswers = 4
    static let maxName = 255

    /// Wall-clock time the query arrived, µs since the epoch.
    var time: UInt64 = 0
    var durationMicros: UInt32 = 0
    var proto: Proto = .udp
    var action: Action = .allowed
    var rcode: UInt8 = 0
    var qtype: UInt16 = 0
    var client = Endpoint(address: .anyV4, port: 0)
    /// The address the client asked.
    var server = Endpoint(address: .anyV4, port: 0)
    /// The upstream that answered, when one did.
    var upstream: Endpoint?
    /// The deciding rule (list index in `filters.lists`, 1-based line), when one decided.
    var ruleList: UInt16 = .max
    var ruleLine: UInt32 = 0
    /// A and AAAA addresses from the answer (the first four), and how many records there were.
    var answerCount: UInt8 = 0
    var answers: (IPAddress, IPAddress, IPAddress, IPAddress) = (.anyV4, .anyV4, .anyV4, .anyV4)
    var otherAnswers: UInt8 = 0
    var nameLength: UInt8 = 0
    // QUIC flows (proto .quic): the name is the SNI.
    var quicVersion: UInt32 = 0
    /// Why no SNI was read (SNIFailure.Code's raw value + 1; 0: an SNI was read, or not tried).
    var sniFailure: UInt8 = 0
    var bytesUp: UInt64 = 0
    var bytesDown: UInt64 = 0
}
