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
        try readSection(root, name: nil, keys: Self.topLevel, into: &config)
        try validate(config, root: root)
        if !config.filters.subscriptions.isEmpty {
            let shortest = ([config.filters.refreshSeconds] + config.filters.subscriptions.compactMap(\.refresh)).min()!
            if shortest < 300 {
                let line = lineOf(path: ["filters", "refresh"], in: root).map { ":\($0)" } ?? ""
                config.warnings.append("\(file)\(line): filters.refresh: a list is downloaded every \(shortest) s; list servers expect hours "
                                       + "(conditional requests keep it cheap, but some servers block clients that ask every few minutes)")
            }
        }
        if config.intercept.local && config.intercept.localBypassUsers.contains(0) {
            let line = lineOf(path: ["intercept", "local_bypass_users"], in: root).map { ":\($0)" } ?? ""
            config.warnings.append("\(file)\(line): intercept.local_bypass_users: root (uid 0) is bypassed, so every service "
                                   + "running as root (package managers, NTP, most daemons) sends its DNS out uncaptured")
        }
        return config
    }

    // MARK: Sections

    /// Reads a mapping whose keys are those of `keys`, each once, in any order; any other key is
    /// an error that lists the ones there are. `name` is the section's dotted path (nil: the top).
    func readSection<Section>(_ node: Node, name: String?, keys: [ConfigurationKey<Section>], into section: inout Section) throws(ConfigurationError) {
        for (keyNode, value) in try mapping(node, key: name) {
            let keyName = try keyName(keyNode, parent: name)
            let path = name.map { "\($0).\(keyName)" } ?? keyName
            guard let key = keys.first(where: { $0.name == keyName }) else {
                throw unknown(keyNode, path, expected: keys.map(\.name).joined(separator: ", "))
            }
            try key.read(self, value, path, &section)
        }
    }

    /// A list path as written, relative to the configuration file's directory.
    func resolve(_ path: String) -> String {
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
        if config.clients.names.isEmpty, let named = config.filters.clients.first(where: { !$0.names.isEmpty }) {
            throw ConfigurationError(file: file, line: named.line, key: "filters.clients.match",
                                     message: "'\(named.names[0])' is a client name, but clients.names has no source of names (hosts, leases or ptr)")
        }
        if !config.filters.clients.isEmpty && config.filters.lists.count > 64 {
            throw ConfigurationError(file: file, line: lineOf(path: ["filters", "clients"], in: root), key: "filters.clients",
                                     message: "per-client policies work with up to 64 lists; \(config.filters.lists.count) are listed")
        }
        if config.intercept.mark == config.intercept.bypassMark {
            throw ConfigurationError(file: file, line: lineOf(path: ["intercept", "bypass_mark"], in: root), key: "intercept.bypass_mark",
                                     message: "must differ from intercept.mark, or the relay's own queries would be captured again")
        }
        if config.intercept.local && [config.intercept.mark, config.intercept.bypassMark].contains(config.intercept.localMark) {
            throw ConfigurationError(file: file, line: lineOf(path: ["intercept", "local_mark"], in: root) ?? lineOf(path: ["intercept", "local"], in: root),
                                     key: "intercept.local_mark", message: "must differ from intercept.mark and intercept.bypass_mark")
        }
        if config.upstream.usesSourceIdentity {
            let others = [config.intercept.mark, config.intercept.bypassMark] + (config.intercept.local ? [config.intercept.localMark] : [])
            if others.contains(config.intercept.identityMark) {
                throw ConfigurationError(file: file, line: lineOf(path: ["intercept", "identity_mark"], in: root)
                                             ?? lineOf(path: ["upstream", "client_identity"], in: root),
                                         key: "intercept.identity_mark", message: "must differ from intercept.mark, bypass_mark and local_mark")
            }
        }
        if config.upstream.mode == .servers && config.upstream.servers.isEmpty {
            throw ConfigurationError(file: file, line: lineOf(path: ["upstream", "mode"], in: root), key: "upstream.servers",
                                     message: "mode is servers but no servers are listed")
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
