import ArgumentParser
import ClientNames
import Configuration
import Pipeline
import RelayCore
import Rules
import Zones

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what the relay does with a query for a name, stage by stage (zones, rules with file:line, cache, upstream).",
        discussion: """
            The verdict is the datapath's own: the query goes through the same pipeline the relay runs \
            (local zones, then the rules, the cache and the upstream), with an empty cache.
            """)

    @OptionGroup var options: ConfigOptions

    @Argument(help: "The name to look up, such as ads.example.test.")
    var name: String

    @Option(name: .customLong("type"), help: "The query type (A, AAAA, HTTPS, TYPE65...).")
    var type: String = "A"

    @Option(name: .customLong("client"), help: "The client's address, or its name from clients.names files: applies filters.clients (names included) and $client rules.")
    var client: String?

    @Option(name: .customLong("server"), help: "The address the client asked (its original destination), such as 10.53.2.53.")
    var server: String?

    func run() throws {
        guard let number = RecordType.number(type) else {
            print("error: unknown record type '\(type)'")
            throw ExitCode(1)
        }
        var destination = Endpoint(address: .anyV4, port: 53)
        if let server {
            guard let parsed = Endpoint(parsing: server, defaultPort: 53) else {
                print("error: '\(server)' is not an address (10.53.2.53, 10.53.2.53:53, [fd53:2::53]:53)")
                throw ExitCode(1)
            }
            destination = parsed
        }
        let configuration: Configuration
        let rules: RuleSet
        var zones = LocalZones.empty
        do {
            configuration = try ConfigurationParser.load(path: options.config)
            rules = try configuration.filters.loadRuleSet()
        } catch {
            print("error: \(error)")
            throw ExitCode(1)
        }
        // The names the relay would have from its files (PTR names never choose a policy), so
        // that a policy written with a client's name applies here as it does in the relay.
        let names = ClientNameFiles.read(hosts: configuration.clients.names.hosts, leases: configuration.clients.names.leases)
        for (path, reason) in names.unreadable { print("warning: clients.names: \(path) \(reason)") }
        var address: IPAddress?
        if let client {
            guard let resolved = Self.clientAddress(client, names: names.table) else { throw ExitCode(1) }
            address = resolved
        }
        if let directory = configuration.zones {
            let loaded = ZoneLoader.load(directory: directory)
            for problem in loaded.errors { print("warning: \(problem)") }
            zones = loaded.zones
        }
        let listen = configuration.listen
        let listeners = [Endpoint(address: listen.address, port: listen.dnsPort)] + (listen.address6.map { [Endpoint(address: $0, port: listen.dnsPort)] } ?? [])
        let pipeline = QueryPipeline(configuration: configuration, rules: rules, zones: zones, listeners: listeners,
                                     policy: configuration.filters.clientPolicy(names: names.table))
        let explanation: Explanation
        do {
            explanation = try Explanation(pipeline: pipeline, name: name, type: number, client: address, destination: destination)
        } catch {
            print("error: \(error)")
            throw ExitCode(1)
        }
        let from = address.map { address in
            let named = names.table.entry(for: address).map { " (\($0.name))" } ?? ""
            return " from \(address)\(named)"
        } ?? ""
        print("\(name) \(type)\(from): \(explanation.verdict)")
        for step in explanation.steps {
            print("  \(step.stage): \(step.result)")
        }
        let lists = pipeline.rules.lists(for: address)
        if lists != .all {
            let applied = configuration.filters.lists.enumerated().filter { lists.bits >> UInt64($0.offset) & 1 == 1 }.map(\.element)
            print("  lists for this client: \(applied.isEmpty ? "none" : applied.joined(separator: ", "))")
        }
        let decided = explanation.outcome.rule != .none
        for (i, rule) in explanation.matches.enumerated() {
            let role = i == 0 && decided ? "decided by" : "also matched"
            print("  \(role) \(rule.source.list):\(rule.source.line): \(rule.source.text)\(rule.important ? " (important)" : "")")
        }
    }

    /// `--client` as an address, or as a name the files give (its first address; the others are
    /// listed). Prints the error itself.
    static func clientAddress(_ text: String, names: ClientNameTable) -> IPAddress? {
        let reference = ClientReference(text, names: names)
        if let problem = reference.problem {
            print("error: --client '\(text)': \(problem)")
            return nil
        }
        if case .named(let name, let addresses) = reference, addresses.count > 1 {
            print("note: \(name) has \(addresses.count) addresses (\(addresses.map(\.description).joined(separator: ", "))); explained for \(addresses[0])")
        }
        return reference.address
    }
}
