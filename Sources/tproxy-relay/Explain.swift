import ArgumentParser
import Relay
import RelayCore
import Rules

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what the rules decide for a name, and every rule that matched (file:line).")

    @OptionGroup var options: ConfigOptions

    @Argument(help: "The name to look up, such as ads.example.test.")
    var name: String

    @Option(name: .customLong("type"), help: "The query type (A, AAAA, HTTPS, TYPE65...).")
    var type: String = "A"

    @Option(name: .customLong("client"), help: "The client's address: applies filters.clients and $client rules.")
    var client: String?

    func run() throws {
        guard let number = RecordType.number(type) else {
            print("error: unknown record type '\(type)'")
            throw ExitCode(1)
        }
        var address: IPAddress?
        if let client {
            guard let parsed = IPAddress(client) else {
                print("error: '\(client)' is not an IP address")
                throw ExitCode(1)
            }
            address = parsed
        }
        let configuration: Configuration
        let rules: RuleSet
        do {
            configuration = try ConfigurationParser.load(path: options.config)
            rules = try RuleSetBuilder.load(paths: configuration.filters.lists)
        } catch {
            print("error: \(error)")
            throw ExitCode(1)
        }
        let lists = address.map { configuration.filters.clientPolicy.lists(for: $0) } ?? .all
        let (decision, matches) = rules.explain(name: name, type: number, client: address, lists: lists)
        let asked = "\(name) \(type)" + (client.map { " from \($0)" } ?? "")
        switch decision.verdict {
        case .pass:
            let route = decision.upstream.map { ", forwarded to \($0)" } ?? ""
            let exception = decision.rule.map { rules.rule(at: $0).action == .allow } ?? false
            print("\(asked): allowed (\(exception ? "an exception won" : "no blocking rule matched"))\(route)")
        case .block: print("\(asked): blocked (answered with \(configuration.filters.blockWith))")
        case .rewrite(let address): print("\(asked): rewritten to \(address)")
        case .dnsRewrite(let rewrite): print("\(asked): $dnsrewrite answers \(rewrite)")
        }
        if lists != .all {
            let applied = configuration.filters.lists.enumerated().filter { lists.bits >> UInt64($0.offset) & 1 == 1 }.map(\.element)
            print("  lists for this client: \(applied.isEmpty ? "none" : applied.joined(separator: ", "))")
        }
        for (i, rule) in matches.enumerated() {
            print("  \(i == 0 ? "decided by" : "also matched") \(rule.source.list):\(rule.source.line): \(rule.source.text)\(rule.important ? " (important)" : "")")
        }
    }
}
