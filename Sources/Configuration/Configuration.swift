import ClientNames
import RelayCore
import Rules

/// Everything `run` needs, validated. Built by `ConfigurationParser` from YAML; every field has
/// the default that `Configs/relay.yaml` documents.
public struct Configuration: Equatable, Sendable {
    public struct Intercept: Equatable, Sendable {
        public init() {}

        /// Capture what arrives on these interfaces.
        public var interfaces: [String] = []
        /// Capture UDP and TCP 53.
        public var dns = true
        /// Capture UDP 443 (QUIC) to `listen.quicPort`.
        public var quic = true
        /// The fwmark set after tproxy; `ip rule fwmark mark lookup routeTable`.
        public var mark: UInt32 = 0x53
        public var routeTable: UInt32 = 153
        /// SO_MARK on the relay's own upstream sockets; must differ from `mark`.
        public var bypassMark: UInt32 = 0x54
        /// Priority of the policy-routing rule.
        public var rulePriority: UInt32 = 10053
        /// Name of the nft table (family inet).
        public var table = "tproxy_relay"
        /// Capture this host's own DNS (and QUIC with `quic`) too: an output chain marks it with
        /// `localMark`, and it reaches the relay like LAN traffic. Off by default: on a host whose
        /// own resolver (dnsmasq, unbound) talks to its upstreams, those queries are captured too
        /// unless its user or group is in the bypass lists.
        public var local = false
        public var localMark: UInt32 = 0x55
        /// The mark the table sets on answers to the relay's sockets bound to clients' addresses
        /// (`upstream.client_identity: source`), so that they are delivered here instead of being
        /// forwarded to the LAN: `ip rule fwmark identityMark lookup routeTable` (PolicyRouting).
        public var identityMark: UInt32 = 0x56
        /// Users and groups (as ids, resolved from names when read) whose sockets go out directly.
        public var localBypassUsers: [UInt32] = []
        public var localBypassGroups: [UInt32] = []
    }

    public struct Listen: Equatable, Sendable {
        public init() {}

        /// Where TPROXY delivers IPv4 traffic.
        public var address: IPAddress = .v4(IPv4Address(127, 0, 0, 1))
        /// Where TPROXY delivers IPv6 traffic; nil turns IPv6 off.
        public var address6: IPAddress? = IPAddress("::1")
        public var dnsPort: UInt16 = 15353
        public var quicPort: UInt16 = 15443
    }

    public enum UpstreamMode: String, Equatable, Sendable {
        /// Ask the server the client asked (the original destination).
        case original
        /// Ask the configured servers, in order.
        case servers
    }

    /// What the upstream learns of the client a query came from (docs/DESIGN.md, "The upstream
    /// sees the client").
    public enum ClientIdentity: String, Equatable, Sendable {
        /// Nothing: queries leave from this host's own address.
        case none
        /// Queries leave from the client's own address (IP_TRANSPARENT sockets bound to it); the
        /// answers come back through this host only where the upstream routes the client's
        /// network through it.
        case source
        /// Queries carry an EDNS Client Subnet option with the client's subnet (RFC 7871).
        case subnet
    }

    public struct Upstream: Equatable, Sendable {
        public init() {}

        public var mode: UpstreamMode = .original
        public var servers: [Endpoint] = []
        /// Per entry of `servers`, the identity it was given (`{address, client_identity}`); nil
        /// where the entry is a plain address and `clientIdentity` applies.
        public var serverIdentities: [ClientIdentity?] = []
        /// What upstreams learn of the client, unless a server entry says otherwise.
        public var clientIdentity: ClientIdentity = .none
        /// The client bits an ECS option carries (`subnet`): /24 and /56 by default, as public
        /// resolvers send (RFC 7871 §11.1).
        public var subnetPrefixV4 = 24
        public var subnetPrefixV6 = 56
        /// A query that carries its own ECS option keeps it (forwarded as is, its answer not
        /// cached) instead of having it replaced by the client's subnet.
        public var keepClientSubnet = false
        /// Sockets bound to clients' addresses (`source`), over all workers; least recently used
        /// ones are closed beyond it.
        public var sourceSockets = 1024

        /// The identity queries to `server` carry: that of the entry of `servers` with this
        /// address and port (a `server=` rule naming a configured server gets the same), else
        /// `clientIdentity`.
        public func identity(for server: Endpoint) -> ClientIdentity {
            if let index = servers.firstIndex(of: server), index < serverIdentities.count, let own = serverIdentities[index] { return own }
            return clientIdentity
        }

        /// The server ports whose answers to clients' addresses the table takes in: 53 and the
        /// configured servers' (one nft rule each). A server on another port (a `server=` rule
        /// target) is asked from this host's own address instead: its answers would be lost.
        public var sourceAnswerPorts: [UInt16] { Array(Set([53] + servers.map(\.port))).sorted() }

        /// Whether any query may leave from a client's address (the table then carries the rule
        /// that takes the answers in).
        public var usesSourceIdentity: Bool {
            clientIdentity == .source || serverIdentities.contains(.source)
        }
        /// How long to wait for one server before the next (or SERVFAIL).
        public var timeoutMilliseconds: Int = 2000
        /// Upstream sockets per worker and family, each on its own random port.
        public var sockets: Int = 16
        /// Queries a worker keeps in flight at most; more are dropped and counted.
        public var maxInFlight: Int = 8192
    }

    /// TCP (client connections and upstream connections) limits.
    public struct TCP: Equatable, Sendable {
        public init() {}

        /// A connection with nothing in flight and no complete query for this long is closed.
        public var idleTimeoutMilliseconds = 10_000
        /// No connection lives longer than this.
        public var maxLifetimeMilliseconds = 120_000
        /// Client connections open at once, in total and per client address.
        public var maxConnections = 1024
        public var maxConnectionsPerClient = 64
        /// Queries one connection may carry, then it is closed once they are answered; 0 = no
        /// limit (as dnsdist and unbound default: long-lived clients pipeline far more).
        public var maxQueriesPerConnection = 0
        /// Largest message accepted (the two-byte length's limit is 65535).
        public var maxMessageSize = 65535
        /// Answers waiting for a client that does not read; beyond this the connection is closed.
        public var maxPendingOutput = 256 * 1024
    }

    /// How a blocked query is answered.
    public enum BlockResponse: Equatable, Sendable {
        case nxdomain
        /// 0.0.0.0 / :: for A / AAAA, an empty NOERROR for other types.
        case nullIP
        case refused
        /// This address for the matching family, an empty NOERROR otherwise.
        case address(IPAddress)
    }

    public struct Filters: Equatable, Sendable {
        public init() {}

        /// Rule files and URLs, in order (relative paths are relative to the configuration file;
        /// a URL is read from its cached copy, `listFiles`).
        public var lists: [String] = []
        /// The URL entries of `lists`, with their settings.
        public var subscriptions: [ListSubscription] = []
        /// Seconds between downloads of URL lists (each download is jittered by up to a tenth).
        public var refreshSeconds = 86_400
        /// A CA bundle trusted for list downloads besides the system's.
        public var caFile: String?
        /// Where downloaded lists are kept (the copy in service survives restarts and failed downloads).
        public var cacheDirectory = "/var/lib/tproxy-relay/lists"
        /// A download larger than this is refused (and the copy in service kept).
        public var maxDownloadBytes = 64 << 20
        /// A download that takes longer than this is abandoned.
        public var downloadTimeoutSeconds = 120
        public var blockWith: BlockResponse = .nxdomain
        /// TTL of answers the relay makes up (blocks and rewrites), in seconds.
        public var ttl: UInt32 = 10
        /// Per-client policies: which of `lists` apply to which clients.
        public var clients: [ClientLists] = []
        /// Reload when a list file changes (inotify), besides SIGHUP.
        public var watch = true

        /// The policies as list masks for the datapath, with the names in them given the
        /// addresses `names` has for them (every address of a name: a client with an IPv4 and
        /// an IPv6 lease is matched on both).
        public func clientPolicy(names: ClientNameTable = .empty) -> ClientPolicy {
            ClientPolicy(clients.flatMap { entry -> [(prefix: IPPrefix, lists: ListMask)] in
                let mask = ListMask(lists: entry.lists.compactMap { lists.firstIndex(of: $0) })
                let named = entry.names.flatMap { names.addresses(named: $0) }
                    .map { IPPrefix(address: $0, length: $0.isIPv6 ? 128 : 32) }
                return (entry.match + named).map { (prefix: $0, lists: mask) }
            })
        }
    }

    /// One `filters.clients` entry: these clients get these lists (none: no filtering at all).
    public struct ClientLists: Equatable, Sendable {
        public var match: [IPPrefix]
        /// Client names (`clients.names`) matched besides the prefixes, lowercase.
        public var names: [String] = []
        /// Paths, resolved as `filters.lists` are.
        public var lists: [String]
        /// Where it was written, for errors found later.
        public var line: Int?
    }

    /// The answer cache (per worker; see docs/DESIGN.md).
    public struct Cache: Equatable, Sendable {
        public init() {}

        /// Answers kept per worker; 0 turns the cache off.
        public var entries = 10_000
        /// Every TTL is raised to at least this and lowered to at most `maxTTL` (seconds).
        public var minTTL: UInt32 = 0
        public var maxTTL: UInt32 = 86_400
        /// Negative answers (NXDOMAIN, NODATA) live min(SOA TTL, SOA minimum), capped by this.
        public var negativeTTL: UInt32 = 3_600
        /// How long after expiry an answer may still be given (TTL 30) when the upstream fails.
        public var serveStale: UInt32 = 86_400
        /// Refresh popular answers in the last tenth of their TTL.
        public var prefetch = true
    }

    /// QUIC flows (UDP 443; docs/QUIC.md).
    public struct QUIC: Equatable, Sendable {
        public init() {}

        /// Read the SNI from Initial packets and apply the rules to it.
        public var sniff = true
        /// Drop all QUIC: browsers fall back to TCP/TLS.
        public var block = false
        /// A flow with no datagram either way for this long is closed.
        public var idleTimeoutMilliseconds = 60_000
        /// How long, and for how many datagrams, a new flow's datagrams wait for the SNI.
        public var holdMilliseconds = 200
        public var holdDatagrams = 4
    }

    /// Resource caps.
    public struct Limits: Equatable, Sendable {
        public init() {}

        /// QUIC flows relayed at once, over all workers; new flows beyond it are dropped.
        public var maxQUICFlows = 10_000

        /// Queries (UDP, TCP) and new QUIC flows per second per client prefix; 0: no limit.
        public var clientQPS = 0
        /// How many may come at once after a quiet spell; 0: as many as `clientQPS`.
        public var clientBurst = 0
        /// The prefix a client is limited as: its own address (/32), or a whole /64 for IPv6
        /// (where one device holds many addresses).
        public var clientPrefixV4 = 32
        public var clientPrefixV6 = 64
        /// Clients never limited.
        public var exempt: [IPPrefix] = []
        /// What a query over the limit gets.
        public var action = RateLimitAction.drop

        public enum RateLimitAction: String, Equatable, Sendable {
            /// No answer (the client's stub retries later).
            case drop
            /// REFUSED with the question.
            case refused
            /// UDP: an empty answer with TC=1 (a real client retries over TCP, which a spoofed one
            /// cannot: Knot's and BIND's "slip"); TCP: REFUSED.
            case slip
        }

        /// The burst in force.
        public var effectiveBurst: Int { clientBurst > 0 ? clientBurst : clientQPS }
    }

    /// The Prometheus endpoint (`/metrics`, `/healthz`; docs/METRICS.md).
    public struct Metrics: Equatable, Sendable {
        public init() {}

        /// Where it listens; empty: off.
        public var listen: [Endpoint] = []
        public static let defaultPort: UInt16 = 9153
    }

    /// The web dashboard (docs/WEB.md).
    public struct Web: Equatable, Sendable {
        public init() {}

        /// Where it listens; empty: off.
        public var listen: [Endpoint] = []
        /// The password's hash, written by `tproxy-relay passwd`; the dashboard does not start without it.
        public var passwordFile = "/var/lib/tproxy-relay/web-password"
        /// How long a login lasts without use.
        public var sessionSeconds = 12 * 3600
        public static let defaultPort: UInt16 = 8053
    }

    /// The known ways around the filter (docs/BYPASS.md): each answer on by default.
    public struct Bypass: Equatable, Sendable {
        public init() {}

        /// What a bypass query is answered with; nil in a setting: off (the query goes on as any other).
        public enum Answer: String, Equatable, Sendable { case nodata, nxdomain }

        /// DDR discovery (`_dns.resolver.arpa`, `_dns.<name>` SVCB).
        public var ddr: Answer? = .nodata
        /// Firefox's canary `use-application-dns.net`.
        public var firefoxCanary: Answer? = .nxdomain
        /// iCloud Private Relay (`mask.icloud.com`, `mask-h2.icloud.com`).
        public var privateRelay: Answer? = .nxdomain
        /// Reject TCP 853 and drop UDP 853 arriving on the intercepted interfaces (DoT, DoQ).
        public var blockEncryptedDNS = false
        /// Files of addresses and prefixes (known DoH servers): TCP/UDP 443 and 853 to them rejected.
        public var blockAddresses: [String] = []
    }

    public var intercept = Intercept()
    public var bypass = Bypass()
    public var metrics = Metrics()
    public var web = Web()
    public var dnstap = Dnstap()
    public var quic = QUIC()
    public var limits = Limits()
    public var cache = Cache()
    /// The directory of zone files (`*.zone`) answered locally; nil: none.
    public var zones: String?

    /// The query log (docs/QUERYLOG.md): one JSON line per answered query.
    public struct QueryLog: Equatable, Sendable {
        public init() {}

        /// The file; nil means no log.
        public var path: String?
        public var enabled = true
        /// Rotate when the file reaches this many bytes.
        public var rotateSize = 64 << 20
        /// Rotated files kept (queries.jsonl.1 ... .keep).
        public var keep = 5
        /// Log clients as their /24 (IPv4) or /56 (IPv6), port 0.
        public var anonymize = false

        public var isOn: Bool { enabled && path != nil }
    }

    public var querylog = QueryLog()
    public var filters = Filters()
    public var clients = Clients()
    public var tcp = TCP()
    public var listen = Listen()
    /// Worker threads; nil means one per available CPU.
    public var workers: Int?
    public var upstream = Upstream()
    /// Settings that were accepted but have no effect in this version, with where they stand
    /// (file:line: key): `check` and `run` print them as warnings.
    public var warnings: [String] = []

    public init() {}

    /// Worker count after resolving `auto`.
    public func resolvedWorkers(availableCPUs: Int) -> Int { workers ?? max(1, availableCPUs) }
}
