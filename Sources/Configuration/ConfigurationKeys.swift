import Glibc
import RelayCore
import Yams

/// One key of a section, written once: its name (what the file says, and what an unknown-key
/// error lists) and how its value is read into the section.
struct ConfigurationKey<Section> {
    let name: String
    let read: (ConfigurationParser, Node, String, inout Section) throws(ConfigurationError) -> Void

    init(_ name: String, _ read: @escaping (ConfigurationParser, Node, String, inout Section) throws(ConfigurationError) -> Void) {
        self.name = name
        self.read = read
    }
}

/// Every key of the configuration, section by section (Configs/relay.yaml documents them).
extension ConfigurationParser {
    typealias Key<Section> = ConfigurationKey<Section>

    static let topLevel: [Key<Configuration>] = [
        Key("intercept") { p, v, _, c throws(ConfigurationError) in try p.readSection(v, name: "intercept", keys: intercept, into: &c.intercept) },
        Key("listen") { p, v, _, c throws(ConfigurationError) in try p.readSection(v, name: "listen", keys: listen, into: &c.listen) },
        Key("workers") { p, v, k, c throws(ConfigurationError) in
            c.workers = v.string == "auto" ? nil : try p.integer(v, key: k, in: 1...1024)
        },
        Key("upstream") { p, v, _, c throws(ConfigurationError) in try p.readSection(v, name: "upstream", keys: upstream, into: &c.upstream) },
        Key("tcp") { p, v, _, c throws(ConfigurationError) in try p.readSection(v, name: "tcp", keys: tcp, into: &c.tcp) },
        Key("filters") { p, v, _, c throws(ConfigurationError) in try p.readSection(v, name: "filters", keys: filters, into: &c.filters) },
        Key("cache") { p, v, _, c throws(ConfigurationError) in try p.readSection(v, name: "cache", keys: cache, into: &c.cache) },
        Key("zones") { p, v, k, c throws(ConfigurationError) in
            let path = try p.scalar(v, key: k)
            guard !path.isEmpty else { throw p.error(v, k, "expected a directory of zone files, such as zones/") }
            c.zones = p.resolve(path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path)
        },
        Key("querylog") { p, v, _, c throws(ConfigurationError) in try p.readSection(v, name: "querylog", keys: querylog, into: &c.querylog) },
        Key("quic") { p, v, _, c throws(ConfigurationError) in try p.readSection(v, name: "quic", keys: quic, into: &c.quic) },
        Key("limits") { p, v, _, c throws(ConfigurationError) in try p.readSection(v, name: "limits", keys: limits, into: &c.limits) },
        Key("metrics") { p, v, _, c throws(ConfigurationError) in try p.readSection(v, name: "metrics", keys: metrics, into: &c.metrics) },
        Key("web") { p, v, _, c throws(ConfigurationError) in try p.readSection(v, name: "web", keys: web, into: &c.web) },
        Key("dnstap") { p, v, _, c throws(ConfigurationError) in
            try p.readSection(v, name: "dnstap", keys: dnstap, into: &c.dnstap)
            if c.dnstap.target == nil { throw p.error(v, "dnstap", "no target: name socket (unix:PATH or tcp:ADDRESS:PORT) or file") }
        },
        Key("bypass") { p, v, _, c throws(ConfigurationError) in try p.readSection(v, name: "bypass", keys: bypass, into: &c.bypass) },
        Key("clients") { p, v, _, c throws(ConfigurationError) in try p.readSection(v, name: "clients", keys: clients, into: &c.clients) },
    ]

    static let clients: [Key<Configuration.Clients>] = [
        Key("names") { p, v, k, s throws(ConfigurationError) in try p.readSection(v, name: k, keys: nameSources, into: &s.names) },
    ]

    static let nameSources: [Key<Configuration.NameSources>] = [
        Key("hosts") { p, v, k, s throws(ConfigurationError) in s.hosts = try p.strings(v, key: k).map(p.resolve) },
        Key("leases") { p, v, k, s throws(ConfigurationError) in s.leases = try p.strings(v, key: k).map(p.resolve) },
        Key("ptr") { p, v, k, s throws(ConfigurationError) in
            let text = try p.scalar(v, key: k)
            s.ptr = text.isEmpty ? nil : try serverAddress(p, v, k)
        },
        Key("ptr_qps") { p, v, k, s throws(ConfigurationError) in s.ptrQueriesPerSecond = try p.integer(v, key: k, in: 1...1000) },
        Key("ptr_ttl") { p, v, k, s throws(ConfigurationError) in s.ptrTTL = Int(try p.seconds(v, key: k, in: 60...(7 * 86_400))) },
        Key("ptr_negative_ttl") { p, v, k, s throws(ConfigurationError) in s.ptrNegativeTTL = Int(try p.seconds(v, key: k, in: 10...86_400)) },
    ]

    static let intercept: [Key<Configuration.Intercept>] = [
        Key("interfaces") { p, v, k, s throws(ConfigurationError) in
            let names = try p.strings(v, key: k)
            for n in names where n.isEmpty || n.utf8.count >= 16 || n.contains("/") || n.contains(" ") {
                throw p.error(v, k, "'\(n)' is not a valid interface name")
            }
            s.interfaces = names
        },
        Key("dns") { p, v, k, s throws(ConfigurationError) in s.dns = try p.boolean(v, key: k) },
        Key("quic") { p, v, k, s throws(ConfigurationError) in s.quic = try p.boolean(v, key: k) },
        Key("mark") { p, v, k, s throws(ConfigurationError) in s.mark = try p.mark(v, key: k) },
        Key("bypass_mark") { p, v, k, s throws(ConfigurationError) in s.bypassMark = try p.mark(v, key: k) },
        Key("route_table") { p, v, k, s throws(ConfigurationError) in
            let table = try p.integer(v, key: k, in: 1...Int(UInt32.max))
            if [253, 254, 255].contains(table) { throw p.error(v, k, "\(table) is a kernel table (default, main, local); choose another") }
            s.routeTable = UInt32(table)
        },
        Key("rule_priority") { p, v, k, s throws(ConfigurationError) in s.rulePriority = UInt32(try p.integer(v, key: k, in: 1...32765)) },
        Key("local") { p, v, k, s throws(ConfigurationError) in s.local = try p.boolean(v, key: k) },
        Key("local_mark") { p, v, k, s throws(ConfigurationError) in s.localMark = try p.mark(v, key: k) },
        Key("identity_mark") { p, v, k, s throws(ConfigurationError) in s.identityMark = try p.mark(v, key: k) },
        Key("local_bypass_users") { p, v, k, s throws(ConfigurationError) in s.localBypassUsers = try p.accounts(v, key: k, kind: .user) },
        Key("local_bypass_groups") { p, v, k, s throws(ConfigurationError) in s.localBypassGroups = try p.accounts(v, key: k, kind: .group) },
        Key("table") { p, v, k, s throws(ConfigurationError) in
            let table = try p.scalar(v, key: k)
            guard !table.isEmpty, table.utf8.count < 64, table.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
                throw p.error(v, k, "'\(table)' is not a valid nft table name")
            }
            s.table = table
        },
    ]

    static let listen: [Key<Configuration.Listen>] = [
        Key("address") { p, v, k, s throws(ConfigurationError) in
            guard let address = IPAddress(try p.scalar(v, key: k)), !address.isIPv6 else {
                throw p.error(v, k, "expected an IPv4 address such as 127.0.0.1")
            }
            s.address = address
        },
        Key("address6") { p, v, k, s throws(ConfigurationError) in
            let text = try p.scalar(v, key: k)
            if text == "none" || text == "off" || text.isEmpty {
                s.address6 = nil
            } else {
                guard let address = IPAddress(text), address.isIPv6 else { throw p.error(v, k, "expected an IPv6 address such as ::1, or none") }
                s.address6 = address
            }
        },
        Key("dns_port") { p, v, k, s throws(ConfigurationError) in s.dnsPort = UInt16(try p.integer(v, key: k, in: 1...65535)) },
        Key("quic_port") { p, v, k, s throws(ConfigurationError) in s.quicPort = UInt16(try p.integer(v, key: k, in: 1...65535)) },
    ]

    static let upstream: [Key<Configuration.Upstream>] = [
        Key("mode") { p, v, k, s throws(ConfigurationError) in
            guard let mode = Configuration.UpstreamMode(rawValue: try p.scalar(v, key: k)) else { throw p.error(v, k, "expected original or servers") }
            s.mode = mode
        },
        Key("servers") { p, v, k, s throws(ConfigurationError) in
            guard case .sequence(let items) = v else { throw p.error(v, k, "expected a list of addresses") }
            var servers: [Endpoint] = []
            var identities: [Configuration.ClientIdentity?] = []
            for item in items {
                // An address, or {address: A, client_identity: I} for a server of its own kind.
                var entry = ServerEntry()
                if case .mapping = item {
                    try p.readSection(item, name: k, keys: serverEntry, into: &entry)
                    guard entry.address != nil else { throw p.error(item, k, "an entry written as a mapping needs address:") }
                } else {
                    entry.address = try serverAddress(p, item, k)
                }
                servers.append(entry.address!)
                identities.append(entry.identity)
            }
            s.servers = servers
            s.serverIdentities = identities
        },
        Key("client_identity") { p, v, k, s throws(ConfigurationError) in s.clientIdentity = try clientIdentity(p, v, k) },
        Key("subnet_prefix_v4") { p, v, k, s throws(ConfigurationError) in s.subnetPrefixV4 = try p.integer(v, key: k, in: 0...32) },
        Key("subnet_prefix_v6") { p, v, k, s throws(ConfigurationError) in s.subnetPrefixV6 = try p.integer(v, key: k, in: 0...128) },
        Key("keep_client_subnet") { p, v, k, s throws(ConfigurationError) in s.keepClientSubnet = try p.boolean(v, key: k) },
        Key("source_sockets") { p, v, k, s throws(ConfigurationError) in s.sourceSockets = try p.integer(v, key: k, in: 16...65536) },
        Key("timeout") { p, v, k, s throws(ConfigurationError) in s.timeoutMilliseconds = try p.duration(v, key: k, in: 10...60_000) },
        Key("sockets") { p, v, k, s throws(ConfigurationError) in s.sockets = try p.integer(v, key: k, in: 1...1024) },
        Key("max_in_flight") { p, v, k, s throws(ConfigurationError) in s.maxInFlight = try p.integer(v, key: k, in: 16...65536) },
    ]

    /// One entry of `upstream.servers` written as a mapping.
    struct ServerEntry {
        var address: Endpoint?
        var identity: Configuration.ClientIdentity?
    }

    static let serverEntry: [Key<ServerEntry>] = [
        Key("address") { p, v, k, s throws(ConfigurationError) in s.address = try serverAddress(p, v, k) },
        Key("client_identity") { p, v, k, s throws(ConfigurationError) in s.identity = try clientIdentity(p, v, k) },
    ]

    static func serverAddress(_ p: ConfigurationParser, _ v: Node, _ k: String) throws(ConfigurationError) -> Endpoint {
        let text = try p.scalar(v, key: k)
        guard let endpoint = Endpoint(parsing: text, defaultPort: 53) else {
            throw p.error(v, k, "'\(text)' is not an address (10.53.2.53, 10.53.2.53:53, [fd53:2::53]:53)")
        }
        return endpoint
    }

    static func clientIdentity(_ p: ConfigurationParser, _ v: Node, _ k: String) throws(ConfigurationError) -> Configuration.ClientIdentity {
        let text = try p.scalar(v, key: k)
        guard let identity = Configuration.ClientIdentity(rawValue: text) else {
            throw p.error(v, k, "expected none, source (the upstream sees the client's address) or subnet (EDNS Client Subnet), got '\(text)'")
        }
        return identity
    }

    static let filters: [Key<Configuration.Filters>] = [
        Key("lists") { p, v, k, s throws(ConfigurationError) in
            guard case .sequence(let items) = v else { throw p.error(v, k, "expected a list of files and URLs, such as [rules/ads.txt]") }
            for item in items {
                var subscription: Configuration.ListSubscription?
                if case .mapping = item {
                    var entry = SubscriptionEntry()
                    try p.readSection(item, name: k, keys: subscriptionEntry, into: &entry)
                    guard let url = entry.url else { throw p.error(item, "\(k).url", "an entry written as a mapping needs url: (a file is written as a plain path)") }
                    subscription = Configuration.ListSubscription(url: url, refresh: entry.refresh, sha256: entry.sha256, line: item.mark?.line)
                } else {
                    let text = try p.scalar(item, key: k)
                    guard !text.isEmpty else { throw p.error(item, k, "an empty entry names no file") }
                    if Configuration.ListURL.looksLikeURL(text) {
                        subscription = Configuration.ListSubscription(url: text, line: item.mark?.line)
                    } else {
                        s.lists.append(p.resolve(text))
                    }
                }
                if let subscription {
                    if case .failure(let problem) = Configuration.ListURL.parse(subscription.url) {
                        throw p.error(item, k, "'\(subscription.url)': \(problem.reason)")
                    }
                    guard !s.lists.contains(subscription.url) else { throw p.error(item, k, "'\(subscription.url)' is listed twice") }
                    s.lists.append(subscription.url)
                    s.subscriptions.append(subscription)
                }
            }
        },
        Key("refresh") { p, v, k, s throws(ConfigurationError) in s.refreshSeconds = Int(try p.seconds(v, key: k, in: 1...(30 * 86_400))) },
        Key("ca_file") { p, v, k, s throws(ConfigurationError) in
            let path = try p.scalar(v, key: k)
            s.caFile = path.isEmpty ? nil : p.resolve(path)
        },
        Key("cache_dir") { p, v, k, s throws(ConfigurationError) in
            let path = try p.scalar(v, key: k)
            guard !path.isEmpty else { throw p.error(v, k, "expected a directory, such as /var/lib/tproxy-relay/lists") }
            s.cacheDirectory = p.resolve(path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path)
        },
        Key("max_download_size") { p, v, k, s throws(ConfigurationError) in s.maxDownloadBytes = try p.bytes(v, key: k, in: 1024...(1 << 30)) },
        Key("download_timeout") { p, v, k, s throws(ConfigurationError) in s.downloadTimeoutSeconds = Int(try p.seconds(v, key: k, in: 1...3600)) },
        Key("block_with") { p, v, k, s throws(ConfigurationError) in
            let text = try p.scalar(v, key: k)
            switch text {
            case "nxdomain": s.blockWith = .nxdomain
            case "null-ip": s.blockWith = .nullIP
            case "refused": s.blockWith = .refused
            default:
                guard let address = IPAddress(text) else { throw p.error(v, k, "expected nxdomain, null-ip, refused or an IP address, got '\(text)'") }
                s.blockWith = .address(address)
            }
        },
        Key("ttl") { p, v, k, s throws(ConfigurationError) in s.ttl = UInt32(try p.integer(v, key: k, in: 0...86400)) },
        Key("clients") { p, v, k, s throws(ConfigurationError) in
            guard case .sequence(let items) = v else { throw p.error(v, k, "expected a list of {match: [CIDR, ...], lists: [file, ...]}") }
            for item in items {
                var entry = ClientEntry()
                try p.readSection(item, name: k, keys: clientEntry, into: &entry)
                guard let match = entry.match, !match.isEmpty || !entry.names.isEmpty else {
                    throw p.error(item, "\(k).match", "each entry needs match: with at least one address, CIDR or client name")
                }
                guard let lists = entry.lists else { throw p.error(item, "\(k).lists", "each entry needs lists: (an empty list means no filtering)") }
                s.clients.append(Configuration.ClientLists(match: match, names: entry.names, lists: lists, line: item.mark?.line))
            }
        },
        Key("watch") { p, v, k, s throws(ConfigurationError) in s.watch = try p.boolean(v, key: k) },
    ]

    /// One `filters.lists` entry written as a mapping.
    struct SubscriptionEntry {
        var url: String?
        var refresh: Int?
        var sha256: String?
    }

    static let subscriptionEntry: [Key<SubscriptionEntry>] = [
        Key("url") { p, v, k, s throws(ConfigurationError) in
            let text = try p.scalar(v, key: k)
            guard Configuration.ListURL.looksLikeURL(text) else { throw p.error(v, k, "'\(text)' is not a URL such as https://host/list.txt") }
            s.url = text
        },
        Key("refresh") { p, v, k, s throws(ConfigurationError) in s.refresh = Int(try p.seconds(v, key: k, in: 1...(30 * 86_400))) },
        Key("sha256") { p, v, k, s throws(ConfigurationError) in
            let text = try p.scalar(v, key: k).lowercased()
            guard text.utf8.count == 64, text.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
                throw p.error(v, k, "expected 64 hexadecimal digits (sha256sum's output)")
            }
            s.sha256 = text
        },
    ]

    /// One `filters.clients` entry while it is read.
    struct ClientEntry {
        var match: [IPPrefix]?
        var names: [String] = []
        var lists: [String]?
    }

    static let clientEntry: [Key<ClientEntry>] = [
        Key("match") { p, v, k, s throws(ConfigurationError) in
            let texts: [String]
            if case .scalar(let single) = v { texts = [single.string] } else { texts = try p.strings(v, key: k) }
            var match: [IPPrefix] = []
            for text in texts {
                if let prefix = IPPrefix(text) {
                    match.append(prefix)
                } else if let name = Configuration.ClientLists.clientName(text) {
                    s.names.append(name)
                } else {
                    throw p.error(v, k, "'\(text)' is not an address, a CIDR such as 10.53.1.0/24 or a client name such as kids-ipad")
                }
            }
            s.match = match
        },
        Key("lists") { p, v, k, s throws(ConfigurationError) in
            s.lists = try p.strings(v, key: k).map { Configuration.ListURL.looksLikeURL($0) ? $0 : p.resolve($0) }
        },
    ]

    static let cache: [Key<Configuration.Cache>] = [
        Key("entries") { p, v, k, s throws(ConfigurationError) in s.entries = try p.integer(v, key: k, in: 0...10_000_000) },
        Key("min_ttl") { p, v, k, s throws(ConfigurationError) in s.minTTL = try p.seconds(v, key: k, in: 0...86_400) },
        Key("max_ttl") { p, v, k, s throws(ConfigurationError) in s.maxTTL = try p.seconds(v, key: k, in: 1...(7 * 86_400)) },
        Key("negative_ttl") { p, v, k, s throws(ConfigurationError) in s.negativeTTL = try p.seconds(v, key: k, in: 0...86_400) },
        Key("serve_stale") { p, v, k, s throws(ConfigurationError) in s.serveStale = try p.seconds(v, key: k, in: 0...(7 * 86_400)) },
        Key("prefetch") { p, v, k, s throws(ConfigurationError) in s.prefetch = try p.boolean(v, key: k) },
    ]

    static let querylog: [Key<Configuration.QueryLog>] = [
        Key("path") { p, v, k, s throws(ConfigurationError) in
            let path = try p.scalar(v, key: k)
            guard !path.isEmpty, !path.hasSuffix("/") else { throw p.error(v, k, "expected a file path, such as /var/log/tproxy-relay/queries.jsonl") }
            s.path = p.resolve(path)
        },
        Key("enabled") { p, v, k, s throws(ConfigurationError) in s.enabled = try p.boolean(v, key: k) },
        Key("rotate_size") { p, v, k, s throws(ConfigurationError) in s.rotateSize = try p.bytes(v, key: k, in: 4096...(1 << 40)) },
        Key("keep") { p, v, k, s throws(ConfigurationError) in s.keep = try p.integer(v, key: k, in: 0...1000) },
        Key("anonymize") { p, v, k, s throws(ConfigurationError) in s.anonymize = try p.boolean(v, key: k) },
    ]

    static let tcp: [Key<Configuration.TCP>] = [
        Key("idle_timeout") { p, v, k, s throws(ConfigurationError) in s.idleTimeoutMilliseconds = try p.duration(v, key: k, in: 100...3_600_000) },
        Key("max_lifetime") { p, v, k, s throws(ConfigurationError) in s.maxLifetimeMilliseconds = try p.duration(v, key: k, in: 100...86_400_000) },
        Key("max_connections") { p, v, k, s throws(ConfigurationError) in s.maxConnections = try p.integer(v, key: k, in: 1...1_000_000) },
        Key("max_connections_per_client") { p, v, k, s throws(ConfigurationError) in
            s.maxConnectionsPerClient = try p.integer(v, key: k, in: 1...1_000_000)
        },
        Key("max_queries_per_connection") { p, v, k, s throws(ConfigurationError) in
            s.maxQueriesPerConnection = try p.integer(v, key: k, in: 0...10_000_000)
        },
        Key("max_message_size") { p, v, k, s throws(ConfigurationError) in s.maxMessageSize = try p.integer(v, key: k, in: 512...65535) },
        Key("max_pending_output") { p, v, k, s throws(ConfigurationError) in s.maxPendingOutput = try p.integer(v, key: k, in: 65537...(64 << 20)) },
    ]

    static let quic: [Key<Configuration.QUIC>] = [
        Key("sniff") { p, v, k, s throws(ConfigurationError) in s.sniff = try p.boolean(v, key: k) },
        Key("block") { p, v, k, s throws(ConfigurationError) in s.block = try p.boolean(v, key: k) },
        Key("idle_timeout") { p, v, k, s throws(ConfigurationError) in s.idleTimeoutMilliseconds = try p.duration(v, key: k, in: 100...3_600_000) },
        Key("hold_time") { p, v, k, s throws(ConfigurationError) in s.holdMilliseconds = try p.duration(v, key: k, in: 0...5_000) },
        Key("hold_datagrams") { p, v, k, s throws(ConfigurationError) in s.holdDatagrams = try p.integer(v, key: k, in: 1...16) },
    ]

    static let bypass: [Key<Configuration.Bypass>] = [
        Key("ddr") { p, v, k, s throws(ConfigurationError) in s.ddr = try bypassAnswer(p, v, k, allowed: [.nodata, .nxdomain]) },
        Key("firefox_canary") { p, v, k, s throws(ConfigurationError) in s.firefoxCanary = try bypassAnswer(p, v, k, allowed: [.nxdomain]) },
        Key("private_relay") { p, v, k, s throws(ConfigurationError) in s.privateRelay = try bypassAnswer(p, v, k, allowed: [.nxdomain]) },
        Key("block_encrypted_dns") { p, v, k, s throws(ConfigurationError) in s.blockEncryptedDNS = try p.boolean(v, key: k) },
        Key("block_addresses") { p, v, k, s throws(ConfigurationError) in s.blockAddresses = try p.strings(v, key: k).map(p.resolve) },
    ]

    /// One of `allowed`, or `off` (also `false`, `no`): the query is then treated as any other.
    static func bypassAnswer(_ p: ConfigurationParser, _ v: Node, _ k: String,
                             allowed: [Configuration.Bypass.Answer]) throws(ConfigurationError) -> Configuration.Bypass.Answer? {
        let text = try p.scalar(v, key: k).lowercased()
        if ["off", "false", "no"].contains(text) { return nil }
        guard let answer = Configuration.Bypass.Answer(rawValue: text), allowed.contains(answer) else {
            throw p.error(v, k, "expected \(allowed.map(\.rawValue).joined(separator: ", ")) or off, got '\(text)'")
        }
        return answer
    }

    static let metrics: [Key<Configuration.Metrics>] = [
        // One address or a list of them; the port defaults to 9153 (CoreDNS's).
        Key("listen") { p, v, k, s throws(ConfigurationError) in s.listen = try listenEndpoints(p, v, k, defaultPort: Configuration.Metrics.defaultPort) },
    ]

    static let web: [Key<Configuration.Web>] = [
        // One address or a list of them; the port defaults to 8053.
        Key("listen") { p, v, k, s throws(ConfigurationError) in s.listen = try listenEndpoints(p, v, k, defaultPort: Configuration.Web.defaultPort) },
        Key("password_file") { p, v, k, s throws(ConfigurationError) in
            let path = try p.scalar(v, key: k)
            guard path.hasPrefix("/") else { throw p.error(v, k, "expected an absolute path, got '\(path)'") }
            s.passwordFile = path
        },
        Key("session") { p, v, k, s throws(ConfigurationError) in
            s.sessionSeconds = try p.duration(v, key: k, in: 60_000...(30 * 86_400_000)) / 1000
        },
    ]

    /// Addresses to listen on (one or a list), each with a port (`defaultPort` when none is given), none twice.
    static func listenEndpoints(_ p: ConfigurationParser, _ v: Node, _ k: String, defaultPort: UInt16) throws(ConfigurationError) -> [Endpoint] {
        let texts: [String]
        if case .sequence = v { texts = try p.strings(v, key: k) } else { texts = [try p.scalar(v, key: k)] }
        var endpoints: [Endpoint] = []
        for text in texts {
            guard let endpoint = Endpoint(parsing: text, defaultPort: defaultPort), endpoint.port != 0 else {
                throw p.error(v, k, "'\(text)' is not an address to listen on (127.0.0.1:\(defaultPort), [::1]:\(defaultPort))")
            }
            guard !endpoints.contains(endpoint) else { throw p.error(v, k, "\(endpoint) is named twice") }
            endpoints.append(endpoint)
        }
        return endpoints
    }

    static let limits: [Key<Configuration.Limits>] = [
        Key("max_quic_flows") { p, v, k, s throws(ConfigurationError) in s.maxQUICFlows = try p.integer(v, key: k, in: 1...1_000_000) },
        Key("client_qps") { p, v, k, s throws(ConfigurationError) in s.clientQPS = try p.integer(v, key: k, in: 0...1_000_000) },
        Key("client_burst") { p, v, k, s throws(ConfigurationError) in s.clientBurst = try p.integer(v, key: k, in: 0...4_000_000) },
        Key("client_prefix_v4") { p, v, k, s throws(ConfigurationError) in s.clientPrefixV4 = try p.integer(v, key: k, in: 8...32) },
        Key("client_prefix_v6") { p, v, k, s throws(ConfigurationError) in s.clientPrefixV6 = try p.integer(v, key: k, in: 16...128) },
        Key("exempt") { p, v, k, s throws(ConfigurationError) in
            var prefixes: [IPPrefix] = []
            for text in try p.strings(v, key: k) {
                guard let prefix = IPPrefix(text) else { throw p.error(v, k, "'\(text)' is not an address or CIDR such as 10.53.1.0/24") }
                prefixes.append(prefix)
            }
            s.exempt = prefixes
        },
        Key("action") { p, v, k, s throws(ConfigurationError) in
            let text = try p.scalar(v, key: k)
            guard let action = Configuration.Limits.RateLimitAction(rawValue: text) else {
                throw p.error(v, k, "expected drop, refused or slip, got '\(text)'")
            }
            s.action = action
        },
    ]
}

extension ConfigurationParser {
    enum AccountKind { case user, group }

    /// A list of user or group names or numeric ids, as ids; a name this host does not know is an
    /// error (a typo must not leave a resolver captured, or uncaptured, by surprise).
    func accounts(_ node: Node, key: String, kind: AccountKind) throws(ConfigurationError) -> [UInt32] {
        var ids: [UInt32] = []
        let items: [Node]
        if case .sequence(let list) = node { items = Array(list) } else { items = [node] }
        for item in items {
            let text = try scalar(item, key: key)
            if let id = UInt32(text) {
                ids.append(id)
                continue
            }
            let found: UInt32?
            switch kind {
            case .user: found = getpwnam(text).map { $0.pointee.pw_uid }
            case .group: found = getgrnam(text).map { $0.pointee.gr_gid }
            }
            guard let id = found else {
                throw error(item, key, "'\(text)' is not a \(kind == .user ? "user" : "group") on this host (a name from /etc/\(kind == .user ? "passwd" : "group"), or a number)")
            }
            ids.append(id)
        }
        return ids
    }
}
