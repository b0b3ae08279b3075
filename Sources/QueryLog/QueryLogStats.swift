import Foundation

/// What `tproxy-relay stats` reports, computed from entries.
public struct QueryLogStats {
    public private(set) var total = 0
    public private(set) var actions: [String: Int] = [:]
    private var domains: [String: Int] = [:]
    private var blockedDomains: [String: Int] = [:]
    private var clients: [String: Int] = [:]
    /// Client address → the latest name the log gave it, and queries by name (a client with an
    /// IPv4 and an IPv6 address under one name is one row).
    private var clientNames: [String: String] = [:]
    private var namedClients: [String: Int] = [:]
    /// Server address → queries, and the distinct clients that addressed it.
    private var servers: [String: (queries: Int, clients: Set<String>)] = [:]
    private var snis: [String: Int] = [:]
    private var forwardedLatencies: [Int] = []
    public private(set) var forwarded = 0
    public private(set) var cached = 0
    /// QUIC flows that ended, and the bytes they carried (from their end entries).
    public private(set) var flowsEnded = 0
    public private(set) var quicBytes = (up: 0, down: 0)
    /// Queries (and flows) from this host itself (`"origin":"local"`).
    public private(set) var local = 0

    public init() {}

    public mutating func add(_ entry: QueryLogEntry) {
        // A flow's end entry carries its totals; the flow was counted when it was decided.
        if entry.isFlowEnd {
            flowsEnded += 1
            quicBytes.up += entry.bytesUp
            quicBytes.down += entry.bytesDown
            return
        }
        total += 1
        if entry.origin == "local" { local += 1 }
        actions[entry.action, default: 0] += 1
        let client = QueryLogEntry.address(of: entry.client)
        clients[client, default: 0] += 1
        if let name = entry.clientName {
            clientNames[client] = name
            namedClients[name, default: 0] += 1
        }
        let server = QueryLogEntry.address(of: entry.server)
        servers[server, default: (0, [])].queries += 1
        servers[server, default: (0, [])].clients.insert(client)
        if let name = entry.qname { domains[name, default: 0] += 1 }
        if entry.action == "blocked", let name = entry.qname ?? entry.sni { blockedDomains[name, default: 0] += 1 }
        if let sni = entry.sni { snis[sni, default: 0] += 1 }
        if entry.action == "cached" { cached += 1 }
        if entry.upstream != nil && !entry.cached {
            forwarded += 1
            forwardedLatencies.append(entry.durationMicros)
        }
    }

    public var blockedShare: Double { total == 0 ? 0 : Double(actions["blocked", default: 0]) / Double(total) }
    /// Of the queries that needed an upstream answer, the share the cache gave.
    public var cacheHitShare: Double { cached + forwarded == 0 ? 0 : Double(cached) / Double(cached + forwarded) }

    /// p50, p90, p99 of forwarded queries' durations (µs), nearest rank.
    public var latencyPercentiles: [String: Int] {
        guard !forwardedLatencies.isEmpty else { return [:] }
        let sorted = forwardedLatencies.sorted()
        func rank(_ p: Double) -> Int { sorted[max(0, min(sorted.count - 1, Int((p * Double(sorted.count)).rounded(.up)) - 1))] }
        return ["p50": rank(0.50), "p90": rank(0.90), "p99": rank(0.99)]
    }

    static func top(_ counts: [String: Int], _ n: Int) -> [(String, Int)] {
        counts.sorted { a, b in a.value != b.value ? a.value > b.value : a.key < b.key }.prefix(n).map { ($0.key, $0.value) }
    }

    public func topServers(_ n: Int) -> [(server: String, clients: Int, queries: Int)] {
        var rows: [(server: String, clients: Int, queries: Int)] = []
        for (server, value) in servers { rows.append((server: server, clients: value.clients.count, queries: value.queries)) }
        rows.sort { (a: (server: String, clients: Int, queries: Int), b: (server: String, clients: Int, queries: Int)) -> Bool in
            if a.clients != b.clients { return a.clients > b.clients }
            if a.queries != b.queries { return a.queries > b.queries }
            return a.server < b.server
        }
        return Array(rows.prefix(n))
    }

    public func json(top n: Int) -> [String: Any] {
        func list(_ pairs: [(String, Int)], _ key: String) -> [[String: Any]] { pairs.map { [key: $0.0, "count": $0.1] } }
        return [
            "total": total,
            "actions": actions,
            "blocked_share": (blockedShare * 10000).rounded() / 10000,
            "cache_hit_share": (cacheHitShare * 10000).rounded() / 10000,
            "top_domains": list(Self.top(domains, n), "name"),
            "top_blocked": list(Self.top(blockedDomains, n), "name"),
            "top_clients": Self.top(clients, n).map { row -> [String: Any] in
                var out: [String: Any] = ["client": row.0, "count": row.1]
                if let name = clientNames[row.0] { out["name"] = name }
                return out
            },
            "top_client_names": list(Self.top(namedClients, n), "name"),
            "servers": topServers(n).map { ["server": $0.server, "clients": $0.clients, "queries": $0.queries] },
            "top_sni": list(Self.top(snis, n), "sni"),
            "forwarded_latency_us": latencyPercentiles,
            "quic_flows_ended": flowsEnded,
            "local_queries": local,
            "quic_bytes": ["up": quicBytes.up, "down": quicBytes.down],
        ]
    }

    public func text(top n: Int) -> String {
        var out = "queries: \(total)   blocked: \(actions["blocked", default: 0]) (\(percent(blockedShare)))   cache hits: \(percent(cacheHitShare)) of \(cached + forwarded) upstream-bound\n"
        if local > 0 { out += "from this host itself: \(local)\n" }
        out += "actions: " + actions.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "\n"
        if !latencyPercentiles.isEmpty {
            let l = latencyPercentiles
            out += "forwarded latency: p50 \(l["p50"]!) µs, p90 \(l["p90"]!) µs, p99 \(l["p99"]!) µs (\(forwarded) queries)\n"
        }
        func section(_ title: String, _ rows: [(String, Int)]) {
            guard !rows.isEmpty else { return }
            out += "\n\(title)\n"
            for (name, count) in rows { out += "  \(String(count).padding(toLength: 8, withPad: " ", startingAt: 0)) \(name)\n" }
        }
        section("top domains", Self.top(domains, n))
        section("top blocked", Self.top(blockedDomains, n))
        section("top clients", Self.top(clients, n).map { row -> (String, Int) in
            guard let name = clientNames[row.0] else { return row }
            return ("\(row.0) (\(name))", row.1)
        })
        section("top clients by name", Self.top(namedClients, n))
        let servers = topServers(n)
        if !servers.isEmpty {
            out += "\nservers clients addressed\n"
            for s in servers { out += "  \(s.server): \(s.clients) client\(s.clients == 1 ? "" : "s"), \(s.queries) queries\n" }
        }
        section("top QUIC SNIs", Self.top(snis, n))
        if flowsEnded > 0 {
            out += "\nQUIC flows ended: \(flowsEnded), \(quicBytes.up) bytes up, \(quicBytes.down) bytes down\n"
        }
        return out
    }

    private func percent(_ share: Double) -> String { String(format: "%.1f%%", share * 100) }
}
