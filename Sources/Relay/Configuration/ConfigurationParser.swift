import Foundation
import RelayCore
import Rules
import Yams

/// Reads the relay's YAML configuration into a `Configuration`, or fails with a
/// `ConfigurationError` that names the file, the line and the key.
///
/// It walks Yams' node tree rather than decoding, because the node keeps the line of every key.
/// Unknown keys are errors (a typo must not silently fall back to a default); sections that later
/// versions implement are accepted with a warning.
public struct ConfigurationParser {
    public let file: String

    public init(file: String) { self.file = file }

    /// Parses YAML text. `file` is only used in error messages.
    public func parse(_ text: String) throws(ConfigurationError) -> Configuration {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw syntaxError(error)
        } catch {
            throw ConfigurationError(file: file, line: nil, key: nil, message: "not valid YAML: \(error)")
        }
        var config = Configuration()
        guard let root else { return config }  // an empty file: all defaults
        let top = try mapping(root, key: nil)
        for (keyNode, value) in top {
            let key = try keyName(keyNode, parent: nil)
            switch key {
            case "intercept": try parseIntercept(value, into: &config.intercept, warnings: &config.warnings)
            case "listen": try parseListen(value, into: &config.listen)
            case "workers":
                if value.string == "auto" { config.workers = nil } else { config.workers = try integer(value, key: key, in: 1...1024) }
            case "upstream": try parseUpstream(value, into: &config.upstream)
            case "tcp": try parseTCP(value, into: &config.tcp)
            case "filters": try parseFilters(value, into: &config.filters)
            case "cache": try parseCache(value, into: &config.cache)
            case "querylog": try parseQueryLog(value, into: &config.querylog)
            case "quic": try parseQUIC(value, into: &config.quic)
            case "limits": try parseLimits(value, into: &config.limits)
            case "zones":
                let path = try scalar(value, key: key)
                guard !path.isEmpty else { throw error(value, key, "expected a directory of zone files, such as zones/") }
                config.zones = resolve(path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path)
            default:
                throw error(keyNode, key, "unknown key (expected one of intercept, listen, workers, upstream, tcp, filters, cache, zones, querylog, quic, limits)")
            }
        }
        try validate(config, root: root)
        return config
    }

    // MARK: Sections

    private func parseIntercept(_ node: Node, into intercept: inout Configuration.Intercept, warnings: inout [String]) throws(ConfigurationError) {
        for (keyNode, value, name, key) in try entries(of: node, section: "intercept") {
            switch name {
            case "interfaces":
                let names = try strings(value, key: key)
                for n in names where n.isEmpty || n.utf8.count >= 16 || n.contains("/") || n.contains(" ") {
                    throw error(value, key, "'\(n)' is not a valid interface name")
                }
                intercept.interfaces = names
            case "dns": intercept.dns = try boolean(value, key: key)
            case "quic": intercept.quic = try boolean(value, key: key)
            case "mark": intercept.mark = try mark(value, key: key)
            case "bypass_mark": intercept.bypassMark = try mark(value, key: key)
            case "route_table":
                let table = try integer(value, key: key, in: 1...Int(UInt32.max))
                if [253, 254, 255].contains(table) {
                    throw error(value, key, "\(table) is a kernel table (default, main, local); choose another")
                }
                intercept.routeTable = UInt32(table)
            case "rule_priority": intercept.rulePriority = UInt32(try integer(value, key: key, in: 1...32765))
            case "table":
                let table = try scalar(value, key: key)
                guard !table.isEmpty, table.utf8.count < 64, table.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
                    throw error(value, key, "'\(table)' is not a valid nft table name")
                }
                intercept.table = table
            default: throw unknown(keyNode, key, expected: "interfaces, dns, quic, mark, bypass_mark, route_table, rule_priority, table")
            }
        }
    }

    private func parseListen(_ node: Node, into listen: inout Configuration.Listen) throws(ConfigurationError) {
        for (keyNode, value, name, key) in try entries(of: node, section: "listen") {
            switch name {
            case "address":
                guard let address = IPAddress(try scalar(value, key: key)), !address.isIPv6 else {
                    throw error(value, key, "expected an IPv4 address such as 127.0.0.1")
                }
                listen.address = address
            case "address6":
                let text = try scalar(value, key: key)
                if text == "none" || text == "off" || text.isEmpty {
                    listen.address6 = nil
                } else {
                    guard let address = IPAddress(text), address.isIPv6 else {
                        throw error(value, key, "expected an IPv6 address such as ::1, or none")
                    }
                    listen.address6 = address
                }
            case "dns_port": listen.dnsPort = UInt16(try integer(value, key: key, in: 1...65535))
            case "quic_port": listen.quicPort = UInt16(try integer(value, key: key, in: 1...65535))
            default: throw unknown(keyNode, key, expected: "address, address6, dns_port, quic_port")
            }
        }
    }

    private func parseUpstream(_ node: Node, into upstream: inout Configuration.Upstream) throws(ConfigurationError) {
        for (keyNode, value, name, key) in try entries(of: node, section: "upstream") {
            switch name {
            case "mode":
                guard let mode = Configuration.UpstreamMode(rawValue: try scalar(value, key: key)) else {
                    throw error(value, key, "expected original or servers")
                }
                upstream.mode = mode
            case "servers":
                var servers: [Endpoint] = []
                guard case .sequence(let items) = value else { throw error(value, key, "expected a list of addresses") }
                for item in items {
                    let text = try scalar(item, key: key)
                    guard let endpoint = Endpoint(parsing: text, defaultPort: 53) else {
                        throw error(item, key, "'\(text)' is not an address (10.53.2.53, 10.53.2.53:53, [fd53:2::53]:53)")
                    }
                    servers.append(endpoint)
                }
                upstream.servers = servers
            case "timeout": upstream.timeoutMilliseconds = try duration(value, key: key, in: 10...60_000)
            case "sockets": upstream.sockets = try integer(value, key: key, in: 1...1024)
            case "max_in_flight": upstream.maxInFlight = try integer(value, key: key, in: 16...65536)
            default: throw unknown(keyNode, key, expected: "mode, servers, timeout, sockets, max_in_flight")
            }
        }
    }

    private func parseFilters(_ node: Node, into filters: inout Configuration.Filters) throws(ConfigurationError) {
        for (keyNode, value, name, key) in try entries(of: node, section: "filters") {
            switch name {
            case "lists":
                filters.lists = try strings(value, key: key).map(resolve)
            case "clients":
                guard case .sequence(let items) = value else {
                    throw error(value, key, "expected a list of {match: [CIDR, ...], lists: [file, ...]}")
                }
                for item in items {
                    var match: [IPPrefix]?
                    var lists: [String]?
                    for (entryKey, entryValue, entryName, _) in try entries(of: item, section: key) {
                        switch entryName {
                        case "match":
                            let texts: [String]
                            if case .scalar(let single) = entryValue { texts = [single.string] } else { texts = try strings(entryValue, key: "\(key).match") }
                            match = []
                            for text in texts {
                                guard let prefix = IPPrefix(text) else {
                                    throw error(entryValue, "\(key).match", "'\(text)' is not an address or CIDR such as 10.53.1.0/24")
                                }
                                match?.append(prefix)
                            }
                        case "lists": lists = try strings(entryValue, key: "\(key).lists").map(resolve)
                        default: throw unknown(entryKey, "\(key).\(entryName)", expected: "match, lists")
                        }
                    }
                    guard let match, !match.isEmpty else { throw error(item, "\(key).match", "each entry needs match: with at least one address or CIDR") }
                    guard let lists else { throw error(item, "\(key).lists", "each entry needs lists: (an empty list means no filtering)") }
                    filters.clients.append(Configuration.ClientLists(match: match, lists: lists, line: item.mark?.line))
                }
            case "watch": filters.watch = try boolean(value, key: key)
            case "block_with":
                let text = try scalar(value, key: key)
                switch text {
                case "nxdomain": filters.blockWith = .nxdomain
                case "null-ip": filters.blockWith = .nullIP
                case "refused": filters.blockWith = .refused
                default:
                    guard let address = IPAddress(text) else {
                        throw error(value, key, "expected nxdomain, null-ip, refused or an IP address, got '\(text)'")
                    }
                    filters.blockWith = .address(address)
                }
            case "ttl": filters.ttl = UInt32(try integer(value, key: key, in: 0...86400))
            default: throw unknown(keyNode, key, expected: "lists, block_with, ttl, clients, watch")
            }
        }
    }

    private func parseCache(_ node: Node, into cache: inout Configuration.Cache) throws(ConfigurationError) {
        for (keyNode, value, name, key) in try entries(of: node, section: "cache") {
            switch name {
            case "entries": cache.entries = try integer(value, key: key, in: 0...10_000_000)
            case "min_ttl": cache.minTTL = try seconds(value, key: key, in: 0...86_400)
            case "max_ttl": cache.maxTTL = try seconds(value, key: key, in: 1...(7 * 86_400))
            case "negative_ttl": cache.negativeTTL = try seconds(value, key: key, in: 0...86_400)
            case "serve_stale": cache.serveStale = try seconds(value, key: key, in: 0...(7 * 86_400))
            case "prefetch": cache.prefetch = try boolean(value, key: key)
            default: throw unknown(keyNode, key, expected: "entries, min_ttl, max_ttl, negative_ttl, serve_stale, prefetch")
            }
        }
    }

    private func parseQueryLog(_ node: Node, into log: inout Configuration.QueryLog) throws(ConfigurationError) {
        for (keyNode, value, name, key) in try entries(of: node, section: "querylog") {
            switch name {
            case "path":
                let path = try scalar(value, key: key)
                guard !path.isEmpty, !path.hasSuffix("/") else { throw error(value, key, "expected a file path, such as /var/log/tproxy-relay/queries.jsonl") }
                log.path = resolve(path)
            case "enabled": log.enabled = try boolean(value, key: key)
            case "rotate_size": log.rotateSize = try bytes(value, key: key, in: 4096...(1 << 40))
            case "keep": log.keep = try integer(value, key: key, in: 0...1000)
            case "anonymize": log.anonymize = try boolean(value, key: key)
            default: throw unknown(keyNode, key, expected: "path, enabled, rotate_size, keep, anonymize")
            }
        }
    }

    /// A size: `1048576`, `512k`, `64M`, `1G` (powers of 1024; a trailing B is allowed).
    private func bytes(_ node: Node, key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        let text = try scalar(node, key: key)
        var digits = Substring(text.uppercased())
        if digits.hasSuffix("B") { digits = digits.dropLast() }
        var multiplier = 1
        switch digits.last {
        case "K": multiplier = 1 << 10; digits = digits.dropLast()
        case "M": multiplier = 1 << 20; digits = digits.dropLast()
        case "G": multiplier = 1 << 30; digits = digits.dropLast()
        default: break
        }
        guard let value = Int(digits), value >= 0, value <= Int.max / multiplier else {
            throw error(node, key, "expected a size such as 64M, 512k or 1048576, got '\(text)'")
        }
        guard range.contains(value * multiplier) else {
            throw error(node, key, "\(text) is out of range (\(range.lowerBound) bytes...\(range.upperBound >> 30)G)")
        }
        return value * multiplier
    }

    /// Whole seconds: `300`, `5m`, `1h`, `1d`.
    private func seconds(_ node: Node, key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> UInt32 {
        let text = try scalar(node, key: key)
        guard let ms = Self.parseDuration(text), ms % 1000 == 0 else {
            throw error(node, key, "expected whole seconds such as 300, 5m, 1h or 1d, got '\(text)'")
        }
        guard range.contains(ms / 1000) else {
            throw error(node, key, "\(text) is out of range (\(range.lowerBound)s...\(range.upperBound)s)")
        }
        return UInt32(ms / 1000)
    }

    private func parseTCP(_ node: Node, into tcp: inout Configuration.TCP) throws(ConfigurationError) {
        for (keyNode, value, name, key) in try entries(of: node, section: "tcp") {
            switch name {
            case "idle_timeout": tcp.idleTimeoutMilliseconds = try duration(value, key: key, in: 100...3_600_000)
            case "max_lifetime": tcp.maxLifetimeMilliseconds = try duration(value, key: key, in: 100...86_400_000)
            case "max_connections": tcp.maxConnections = try integer(value, key: key, in: 1...1_000_000)
            case "max_connections_per_client": tcp.maxConnectionsPerClient = try integer(value, key: key, in: 1...1_000_000)
            case "max_queries_per_connection": tcp.maxQueriesPerConnection = try integer(value, key: key, in: 0...10_000_000)
            case "max_message_size": tcp.maxMessageSize = try integer(value, key: key, in: 512...65535)
            case "max_pending_output": tcp.maxPendingOutput = try integer(value, key: key, in: 65537...(64 << 20))
            default:
                throw unknown(keyNode, key, expected: "idle_timeout, max_lifetime, max_connections, max_connections_per_client, max_queries_per_connection, max_message_size, max_pending_output")
            }
        }
    }

    private func parseQUIC(_ node: Node, into quic: inout Configuration.QUIC) throws(ConfigurationError) {
        for (keyNode, value, name, key) in try entries(of: node, section: "quic") {
            switch name {
            case "sniff": quic.sniff = try boolean(value, key: key)
            case "block": quic.block = try boolean(value, key: key)
            case "idle_timeout": quic.idleTimeoutMilliseconds = try duration(value, key: key, in: 100...3_600_000)
            case "hold_time": quic.holdMilliseconds = try duration(value, key: key, in: 0...5_000)
            case "hold_datagrams": quic.holdDatagrams = try integer(value, key: key, in: 1...16)
            default: throw unknown(keyNode, key, expected: "sniff, block, idle_timeout, hold_time, hold_datagrams")
            }
        }
    }

    private func parseLimits(_ node: Node, into limits: inout Configuration.Limits) throws(ConfigurationError) {
        for (keyNode, value, name, key) in try entries(of: node, section: "limits") {
            switch name {
            case "max_quic_flows": limits.maxQUICFlows = try integer(value, key: key, in: 1...1_000_000)
            default: throw unknown(keyNode, key, expected: "max_quic_flows")
            }
        }
    }

    /// A list path as written, relative to the configuration file's directory.
    private func resolve(_ path: String) -> String {
        let base = (file as NSString).deletingLastPathComponent
        return path.hasPrefix("/") || base.isEmpty ? path : base + "/" + path
    }

    /// Rules that involve several keys.
    private func validate(_ config: Configuration, root: Node) throws(ConfigurationError) {
        if config.cache.minTTL > config.cache.maxTTL {
            throw ConfigurationError(file: file, line: lineOf(path: ["cache", "min_ttl"], in: root), key: "cache.min_ttl",
                                     message: "must not exceed cache.max_ttl")
        }
        for entry in config.filters.clients {
            for list in entry.lists where !config.filters.lists.contains(list) {
                throw ConfigurationError(file: file, line: entry.line, key: "filters.clients.lists",
                                         message: "'\(list)' is not one of filters.lists (name it there first)")
            }
        }
        if !config.filters.clients.isEmpty && config.filters.lists.count > 64 {
            throw ConfigurationError(file: file, line: lineOf(path: ["filters", "clients"], in: root), key: "filters.clients",
                                     message: "per-client policies work with up to 64 lists; \(config.filters.lists.count) are listed")
        }
        if config.intercept.mark == config.intercept.bypassMark {
            throw ConfigurationError(file: file, line: lineOf(path: ["intercept", "bypass_mark"], in: root), key: "intercept.bypass_mark",
                                     message: "must differ from intercept.mark, or the relay's own queries would be captured again")
        }
        if config.upstream.mode == .servers && config.upstream.servers.isEmpty {
            throw ConfigurationError(file: file, line: lineOf(path: ["upstream", "mode"], in: root), key: "upstream.servers",
                                     message: "mode is servers but no servers are listed")
        }
    }

    // MARK: Scalars

    private func mapping(_ node: Node, key: String?) throws(ConfigurationError) -> [(Node, Node)] {
        guard case .mapping(let m) = node else {
            throw error(node, key, key == nil ? "the file must be a mapping of sections" : "expected a mapping of keys")
        }
        return m.map { ($0.key, $0.value) }
    }

    /// A section's entries: the key's node (for its line), the value, the key's name and its
    /// dotted path (`upstream.timeout`), for error messages.
    private func entries(of node: Node, section: String) throws(ConfigurationError) -> [(Node, Node, String, String)] {
        var out: [(Node, Node, String, String)] = []
        for (keyNode, value) in try mapping(node, key: section) {
            let name = try keyName(keyNode, parent: section)
            out.append((keyNode, value, name, "\(section).\(name)"))
        }
        return out
    }

    private func keyName(_ node: Node, parent: String?) throws(ConfigurationError) -> String {
        guard case .scalar(let s) = node else { throw error(node, parent, "keys must be plain names") }
        return s.string
    }

    private func scalar(_ node: Node, key: String) throws(ConfigurationError) -> String {
        guard case .scalar(let s) = node else { throw error(node, key, "expected a single value") }
        return s.string
    }

    private func strings(_ node: Node, key: String) throws(ConfigurationError) -> [String] {
        guard case .sequence(let items) = node else { throw error(node, key, "expected a list, such as [lan0]") }
        var out: [String] = []
        for item in items { out.append(try scalar(item, key: key)) }
        return out
    }

    private func boolean(_ node: Node, key: String) throws(ConfigurationError) -> Bool {
        switch try scalar(node, key: key).lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(node, key, "expected true or false")
        }
    }

    private func integer(_ node: Node, key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        let text = try scalar(node, key: key)
        guard let value = Self.parseInteger(text) else { throw error(node, key, "expected a whole number, got '\(text)'") }
        guard range.contains(value) else {
            throw error(node, key, "\(value) is out of range (\(range.lowerBound)...\(range.upperBound))")
        }
        return value
    }

    private func mark(_ node: Node, key: String) throws(ConfigurationError) -> UInt32 {
        let value = try integer(node, key: key, in: 0...Int(UInt32.max))
        guard value != 0 else { throw error(node, key, "must not be 0 (unmarked packets carry 0)") }
        return UInt32(value)
    }

    /// `2s`, `500ms`, `1.5s`, or a bare number of seconds.
    private func duration(_ node: Node, key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        let text = try scalar(node, key: key)
        guard let ms = Self.parseDuration(text) else {
            throw error(node, key, "expected a duration such as 2s or 500ms, got '\(text)'")
        }
        guard range.contains(ms) else {
            throw error(node, key, "\(text) is out of range (\(range.lowerBound)ms...\(range.upperBound / 1000)s)")
        }
        return ms
    }

    static func parseInteger(_ text: String) -> Int? {
        if text.hasPrefix("0x") || text.hasPrefix("0X") { return Int(text.dropFirst(2), radix: 16) }
        return Int(text)
    }

    /// Milliseconds, or nil.
    public static func parseDuration(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces)
        func number(_ s: Substring) -> Double? { Double(s).flatMap { $0.isFinite && $0 >= 0 ? $0 : nil } }
        if t.hasSuffix("ms"), let v = number(t.dropLast(2)) { return Int(v.rounded()) }
        if t.hasSuffix("s"), let v = number(t.dropLast(1)) { return Int((v * 1000).rounded()) }
        if t.hasSuffix("m"), let v = number(t.dropLast(1)) { return Int((v * 60_000).rounded()) }
        if t.hasSuffix("h"), let v = number(t.dropLast(1)) { return Int((v * 3_600_000).rounded()) }
        if t.hasSuffix("d"), let v = number(t.dropLast(1)) { return Int((v * 86_400_000).rounded()) }
        if let v = number(Substring(t)) { return Int((v * 1000).rounded()) }
        return nil
    }

    // MARK: Errors

    private func line(_ node: Node) -> Int { node.mark?.line ?? 0 }

    private func error(_ node: Node, _ key: String?, _ message: String) -> ConfigurationError {
        ConfigurationError(file: file, line: node.mark?.line, key: key, message: message)
    }

    private func unknown(_ node: Node, _ key: String, expected: String) -> ConfigurationError {
        error(node, key, "unknown key (expected one of \(expected))")
    }

    private func lineOf(path: [String], in root: Node) -> Int? {
        var node = root
        var found: Node = root
        for component in path {
            guard case .mapping(let m) = node, let pair = m.first(where: { $0.key.string == component }) else { break }
            found = pair.key
            node = pair.value
        }
        return found.mark?.line
    }

    private func syntaxError(_ error: YamlError) -> ConfigurationError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ConfigurationError(file: file, line: mark.line, key: nil, message: "YAML syntax error: \(problem)")
        default:
            return ConfigurationError(file: file, line: nil, key: nil, message: "not valid YAML: \(error)")
        }
    }
}

extension ConfigurationParser {
    /// Reads and parses a file.
    public static func load(path: String) throws(ConfigurationError) -> Configuration {
        let text: String
        switch RegularFile.read(path, limit: 16 << 20) {
        case .success(let bytes):
            guard let decoded = String(validating: bytes, as: UTF8.self) else {
                throw ConfigurationError(file: path, line: nil, key: nil, message: "is not valid UTF-8 text")
            }
            text = decoded
        case .failure(let failure):
            throw ConfigurationError(file: path, line: nil, key: nil, message: "cannot read the file: it \(failure.reason)")
        }
        return try ConfigurationParser(file: path).parse(text)
    }
}
