import DNS
import RelayCore

/// How a query reached the relay.
public enum Transport: Equatable, Sendable {
    case udp
    case tcp
}

/// What the pipeline knows of one query: the parsed facts, who asked, whom they asked, how.
/// Built once per query by the datapath (or by `explain`); the name is decoded by the pipeline,
/// once, into its own scratch space.
public struct QueryFacts {
    public var query: ParsedQuery
    public var client: Endpoint
    /// The address the client sent to (its original destination).
    public var destination: Endpoint
    public var transport: Transport
    /// The address `$client` rules and `filters.clients` see; nil in `explain` without `--client`
    /// (rules limited to clients then do not apply).
    public var ruleClient: IPAddress?

    public init(query: ParsedQuery, client: Endpoint, destination: Endpoint, transport: Transport) {
        self.query = query
        self.client = client
        self.destination = destination
        self.transport = transport
        ruleClient = client.address
    }

    /// The largest answer this client takes: its EDNS size (512 without) over UDP, 64 KiB over TCP.
    @inline(__always)
    public var answerLimit: Int { transport == .udp ? query.udpPayloadSize : 65535 }
}
