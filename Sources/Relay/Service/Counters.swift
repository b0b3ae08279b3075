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
    /// Queries and new QUIC flows over their client's rate (`limits.client_qps`), and of those
    /// the UDP queries answered with TC=1 (`limits.action: slip`).
    public var rateLimited = 0
    public var rateLimitSlips = 0
    /// Read from the kernel (the nft table's named counters), not kept by workers: packets to port
    /// 853 rejected or dropped (`bypass.block_encrypted_dns`), and packets to blocked addresses
    /// (`bypass.block_addresses`).
    public var encryptedDNSBlocked = 0
    public var blockedAddressPackets = 0
    /// Bypass answers (`bypass:`): DDR discovery, Firefox's canary, iCloud Private Relay.
    public var bypassDDR = 0
    public var bypassCanary = 0
    public var bypassPrivateRelay = 0

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

    /// One entry of the table below.
    public struct Field {
        public enum Kind { case counter, gauge }
        /// The name in the SIGUSR1/stop summary; /metrics adds `tproxy_relay_` (and `_total` to a counter).
        public let name: String
        public let path: WritableKeyPath<Counters, Int>
        public let kind: Kind
        /// The `# HELP` text.
        public let help: String

        static func counter(_ name: String, _ path: WritableKeyPath<Counters, Int>, _ help: String) -> Field {
            Field(name: name, path: path, kind: .counter, help: help)
        }

        static func gauge(_ name: String, _ path: WritableKeyPath<Counters, Int>, _ help: String) -> Field {
            Field(name: name, path: path, kind: .gauge, help: help)
        }
    }

    /// Every counter, once: its name in the SIGUSR1/stop summary (tests and scripts parse it) and
    /// in /metrics, whether it only grows (a counter) or goes up and down (a gauge: summed over
    /// workers all the same), and where it is kept. Sums, the summary and /metrics are made from
    /// this table alone.
    public static let fields: [Field] = [
        .counter("received", \.received, "DNS datagrams read from the listeners."),
        .counter("forwarded", \.forwarded, "Queries sent upstream (first tries)."),
        .counter("answered", \.answered, "Upstream (or cached) answers relayed to clients."),
        .counter("blocked", \.blocked, "Queries answered by a block rule."),
        .counter("rewritten", \.rewritten, "Queries answered by a rewrite rule."),
        .counter("formerr", \.formatErrors, "FORMERR answers (a query that could not be read)."),
        .counter("notimp", \.notImplemented, "NOTIMP answers (an opcode other than QUERY)."),
        .counter("dropped_short", \.droppedShort, "Datagrams dropped: shorter than a DNS header."),
        .counter("dropped_qr", \.droppedResponses, "Datagrams dropped: a response arriving as a query."),
        .counter("dropped_oversize", \.droppedOversize, "Queries dropped: longer than the largest query kept."),
        .counter("dropped_nodst", \.droppedNoDestination, "Datagrams dropped: no original destination in the control data."),
        .counter("dropped_overload", \.droppedOverload, "Queries dropped: the in-flight table was full."),
        .counter("upstream_mismatch", \.upstreamMismatches, "Upstream answers that matched no query in flight."),
        .counter("upstream_malformed", \.upstreamMalformed, "Upstream answers refused as malformed."),
        .counter("upstream_ports", \.upstreamPorts, "Upstream UDP sockets opened (each on a random source port)."),
        .counter("upstream_ports_reused", \.upstreamPortsReused, "Upstream batches sent on a socket used before (replacement budget spent)."),
        .counter("source_sockets_opened", \.sourceSocketsOpened, "Sockets opened bound to clients' addresses (client_identity source)."),
        .gauge("source_sockets_open", \.sourceSocketsOpen, "Sockets bound to clients' addresses open now."),
        .counter("source_fallback", \.sourceFallbacks, "Queries sent from this host's address although client_identity source asked otherwise."),
        .counter("subnet_added", \.subnetsAdded, "Queries given an EDNS Client Subnet option."),
        .counter("subnet_kept", \.subnetsKept, "Queries whose own ECS option was kept."),
        .counter("subnet_unchanged", \.subnetsUnchanged, "Queries an ECS option could not be added to."),
        .counter("subnet_scope_narrow", \.subnetScopeNarrow, "Answers not cached: their ECS scope was narrower than the subnet sent."),
        .counter("upstream_timeout", \.upstreamTimeouts, "Upstream tries that timed out."),
        .counter("upstream_retry", \.upstreamRetries, "Tries sent to the next server after a timeout."),
        .counter("servfail", \.serverFailures, "SERVFAIL answers after every upstream failed."),
        .counter("refused_loop", \.refusedLoops, "REFUSED answers to queries addressed to the relay itself."),
        .counter("truncated", \.truncatedAnswers, "Upstream answers larger than the receive buffer, passed on truncated."),
        .counter("reply_fail", \.replyFailures, "Replies that could not be sent."),
        .counter("upstream_send_fail", \.upstreamSendFailures, "Upstream queries that could not be sent."),
        .counter("tcp_accepted", \.tcpAccepted, "Client TCP connections accepted."),
        .counter("tcp_refused", \.tcpRefused, "Client TCP connections refused at a limit."),
        .counter("tcp_queries", \.tcpQueries, "Queries read from client TCP connections."),
        .counter("tcp_closed_idle", \.tcpClosedIdle, "Client TCP connections closed for idleness or age."),
        .counter("tcp_malformed", \.tcpMalformed, "Client TCP connections closed for a malformed message."),
        .counter("tcp_slow_readers", \.tcpSlowReaders, "Client TCP connections closed because they did not read their answers."),
        .counter("tcp_retry", \.tcpRetries, "Truncated UDP answers asked again over TCP."),
        .counter("truncated_for_client", \.truncatedForClients, "Answers too large for the client's UDP buffer, sent with TC=1."),
        .counter("upstream_tcp_fail", \.upstreamTCPFailures, "Upstream TCP connections that failed with queries waiting."),
        .counter("upstream_tcp_stalled", \.upstreamTCPStalled, "Upstream TCP connections closed because an answer stalled."),
        .counter("accept_paused", \.acceptPaused, "Times a listener paused accepting for lack of descriptors."),
        .counter("aliased", \.aliasesResolved, "Queries a $dnsrewrite alias sent upstream for its target."),
        .counter("forwarded_by_rule", \.forwardedByRule, "Queries sent to a server=/d/ upstream."),
        .counter("cache_hits", \.cacheHits, "Queries answered from the cache."),
        .counter("cache_misses", \.cacheMisses, "Cache lookups that found nothing fresh."),
        .counter("cache_inserted", \.cacheInserted, "Answers put in the cache."),
        .counter("cache_evicted", \.cacheEvicted, "Cache entries evicted to make room."),
        .counter("cache_stale", \.cacheStale, "Stale answers given because the upstream failed."),
        .gauge("cache_entries", \.cacheEntries, "Answers held in the cache now."),
        .counter("cache_prefetches", \.cachePrefetches, "Prefetches sent for popular entries about to expire."),
        .counter("local", \.localAnswers, "Queries answered from a local zone."),
        .counter("rate_limited", \.rateLimited, "Queries and new QUIC flows over their client's rate (limits.client_qps)."),
        .counter("rate_limit_slips", \.rateLimitSlips, "Rate-limited UDP queries answered with TC=1 (limits.action: slip)."),
        .counter("bypass_encrypted_dns", \.encryptedDNSBlocked, "Packets to port 853 (DoT, DoQ) rejected or dropped (bypass.block_encrypted_dns), counted by the kernel."),
        .counter("bypass_blocked_addresses", \.blockedAddressPackets, "Packets to HTTPS/853 of blocked addresses rejected or dropped (bypass.block_addresses), counted by the kernel."),
        .counter("bypass_ddr", \.bypassDDR, "DDR discovery queries answered NODATA (bypass.ddr)."),
        .counter("bypass_canary", \.bypassCanary, "Firefox canary queries answered NXDOMAIN (bypass.firefox_canary)."),
        .counter("bypass_private_relay", \.bypassPrivateRelay, "iCloud Private Relay queries answered NXDOMAIN (bypass.private_relay)."),
        .counter("quic_flows", \.quicFlows, "QUIC flows opened."),
        .counter("quic_blocked", \.quicBlocked, "QUIC flows blocked (by SNI rule or quic.block)."),
        .counter("quic_no_sni", \.quicNoSNI, "QUIC flows whose SNI could not be read."),
        .counter("quic_refused", \.quicRefused, "QUIC flows refused at limits.max_quic_flows."),
        .counter("quic_closed", \.quicClosed, "QUIC flows ended."),
        .gauge("quic_open", \.quicOpen, "QUIC flows open now."),
        .counter("quic_packets_up", \.quicPacketsUp, "QUIC datagrams relayed to servers."),
        .counter("quic_packets_down", \.quicPacketsDown, "QUIC datagrams relayed to clients."),
        .counter("quic_dropped", \.quicDropped, "QUIC datagrams dropped."),
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
