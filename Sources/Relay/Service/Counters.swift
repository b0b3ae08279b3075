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
    /// NOTIMP answers: an opcode other than QUERY.
    public var notImplemented = 0
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
    /// Upstream answers refused as malformed (records missing or past the end, pointer loops,
    /// data that does not fit its type): the client gets SERVFAIL (or a stale answer), nothing is cached.
    public var upstreamMalformed = 0
    /// Upstream UDP sockets opened (each on its own random source port), and batches that went
    /// out on a socket used before because `maxRetiring` replaced sockets were still open.
    public var upstreamPorts = 0
    public var upstreamPortsReused = 0
    /// `upstream.client_identity: source`: sockets opened bound to clients' addresses, sockets
    /// open now (a gauge), and queries that went out from this host's own address instead (no
    /// socket could be bound, the server is of the other family, or too many sockets still
    /// waited for answers).
    public var sourceSocketsOpened = 0
    public var sourceSocketsOpen = 0
    public var sourceFallbacks = 0
    /// `subnet`: queries that got an ECS option, queries whose own ECS was kept
    /// (`keep_client_subnet`), queries it could not be added to (no room, a signed message),
    /// and answers not cached because their scope was narrower than the subnet sent.
    public var subnetsAdded = 0
    public var subnetsKept = 0
    public var subnetsUnchanged = 0
    public var subnetScopeNarrow = 0
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

    /// Client TCP connections accepted.
    public var tcpAccepted = 0
    /// Client TCP connections refused at a limit (total or per client).
    public var tcpRefused = 0
    /// Queries read from client TCP connections.
    public var tcpQueries = 0
    /// Client connections closed for idleness or age (slow or stalled senders among them).
    public var tcpClosedIdle = 0
    /// Client connections closed for a malformed length or message.
    public var tcpMalformed = 0
    /// Client connections closed because they did not read their answers.
    public var tcpSlowReaders = 0
    /// UDP answers with TC=1 asked again over TCP.
    public var tcpRetries = 0
    /// Answers too large for the client's UDP buffer, sent as TC=1.
    public var truncatedForClients = 0
    /// Upstream TCP connections that failed or closed with queries waiting.
    public var upstreamTCPFailures = 0
    /// Upstream TCP connections closed because an answer started and stopped arriving.
    public var upstreamTCPStalled = 0
    /// Times a listener stopped accepting for a moment because the process ran out of
    /// descriptors (EMFILE/ENFILE); the connections wait in the kernel's backlog meanwhile.
    public var acceptPaused = 0

    /// Queries answered by a block rule.
    public var blocked = 0
    /// Queries answered locally by a rewrite rule (hosts line with an address, dnsmasq address).
    public var rewritten = 0
    /// Queries a `$dnsrewrite` alias sent upstream as a query for its target.
    public var aliasesResolved = 0
    /// Queries sent to a `server=/d/` upstream rather than the configured one.
    public var forwardedByRule = 0
    /// The answer cache: answered from it, not found (or expired), answers kept, entries evicted
    /// to make room, stale answers given when the upstream failed, entries held, prefetches sent.
    public var cacheHits = 0
    public var cacheMisses = 0
    public var cacheInserted = 0
    public var cacheEvicted = 0
    public var cacheStale = 0
    public var cacheEntries = 0
    public var cachePrefetches = 0
    /// Queries answered from a local zone.
    public var localAnswers = 0

    // QUIC (Relay/QUIC).
    /// Flows opened, flows blocked (by SNI rule or `quic.block`), flows whose SNI could not be
    /// read, flows refused at `limits.max_quic_flows`, flows ended (idle or at stop).
    public var quicFlows = 0
    public var quicBlocked = 0
    public var quicNoSNI = 0
    public var quicRefused = 0
    public var quicClosed = 0
    /// Datagrams relayed each way, and datagrams dropped (blocked flows, oversize, send errors).
    public var quicPacketsUp = 0
    public var quicPacketsDown = 0
    public var quicDropped = 0
    /// Flows open now (a gauge).
    public var quicOpen = 0

    public init() {}

    /// Every counter, once: its name in the SIGUSR1/stop summary (tests and scripts parse it) and
    /// where it is kept. Sums and the summary are made from this table alone.
    public static let fields: [(name: String, path: WritableKeyPath<Counters, Int>)] = [
        ("received", \.received),
        ("forwarded", \.forwarded),
        ("answered", \.answered),
        ("blocked", \.blocked),
        ("rewritten", \.rewritten),
        ("formerr", \.formatErrors),
        ("notimp", \.notImplemented),
        ("dropped_short", \.droppedShort),
        ("dropped_qr", \.droppedResponses),
        ("dropped_oversize", \.droppedOversize),
        ("dropped_nodst", \.droppedNoDestination),
        ("dropped_overload", \.droppedOverload),
        ("upstream_mismatch", \.upstreamMismatches),
        ("upstream_malformed", \.upstreamMalformed),
        ("upstream_ports", \.upstreamPorts),
        ("upstream_ports_reused", \.upstreamPortsReused),
        ("source_sockets_opened", \.sourceSocketsOpened),
        ("source_sockets_open", \.sourceSocketsOpen),
        ("source_fallback", \.sourceFallbacks),
        ("subnet_added", \.subnetsAdded),
        ("subnet_kept", \.subnetsKept),
        ("subnet_unchanged", \.subnetsUnchanged),
        ("subnet_scope_narrow", \.subnetScopeNarrow),
        ("upstream_timeout", \.upstreamTimeouts),
        ("upstream_retry", \.upstreamRetries),
        ("servfail", \.serverFailures),
        ("refused_loop", \.refusedLoops),
        ("truncated", \.truncatedAnswers),
        ("reply_fail", \.replyFailures),
        ("upstream_send_fail", \.upstreamSendFailures),
        ("tcp_accepted", \.tcpAccepted),
        ("tcp_refused", \.tcpRefused),
        ("tcp_queries", \.tcpQueries),
        ("tcp_closed_idle", \.tcpClosedIdle),
        ("tcp_malformed", \.tcpMalformed),
        ("tcp_slow_readers", \.tcpSlowReaders),
        ("tcp_retry", \.tcpRetries),
        ("truncated_for_client", \.truncatedForClients),
        ("upstream_tcp_fail", \.upstreamTCPFailures),
        ("upstream_tcp_stalled", \.upstreamTCPStalled),
        ("accept_paused", \.acceptPaused),
        ("aliased", \.aliasesResolved),
        ("forwarded_by_rule", \.forwardedByRule),
        ("cache_hits", \.cacheHits),
        ("cache_misses", \.cacheMisses),
        ("cache_inserted", \.cacheInserted),
        ("cache_evicted", \.cacheEvicted),
        ("cache_stale", \.cacheStale),
        ("cache_entries", \.cacheEntries),
        ("cache_prefetches", \.cachePrefetches),
        ("local", \.localAnswers),
        ("quic_flows", \.quicFlows),
        ("quic_blocked", \.quicBlocked),
        ("quic_no_sni", \.quicNoSNI),
        ("quic_refused", \.quicRefused),
        ("quic_closed", \.quicClosed),
        ("quic_open", \.quicOpen),
        ("quic_packets_up", \.quicPacketsUp),
        ("quic_packets_down", \.quicPacketsDown),
        ("quic_dropped", \.quicDropped),
    ]

    /// Sums counters of several workers.
    public static func + (a: Counters, b: Counters) -> Counters {
        var c = a
        for field in fields { c[keyPath: field.path] += b[keyPath: field.path] }
        return c
    }

    /// `key=value` pairs for one log line, in a fixed order (tests and scripts parse it).
    public var summary: String {
        Counters.fields.map { "\($0.name)=\(self[keyPath: $0.path])" }.joined(separator: " ")
    }
}
