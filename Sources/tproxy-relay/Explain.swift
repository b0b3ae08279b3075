import ArgumentParser
import Relay
import Rules

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what the rules decide for a name, and every rule that matched (file:line).")

    @OptionGroup var options: ConfigOptions

    @Argument(help: "The name to look up, such as ads.example.test.")
    var name: String

    @Option(name: .customLong("type"), help: "The query type (A, AAAA, HTTPS, TYPE65...).")
    var type: String = "A"

    func run() throws {
        guard let number = RecordType.number(type) else {
            print("error: unknown record type '\(type)'")
            throw ExitCode(1)
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
        let (decision, matches) = rules.explain(name: name, type: number)
        switch decision.verdict {
        case .pass: print("\(name) \(type): \(matches.isEmpty ? "allowed (no rule matched)" : "allowed (an exception won)")")
        case .block: print("\(name) \(type): blocked (answered with \(configuration.filters.blockWith))")
        case .rewrite(let address): print("\(name) \(type): rewritten to \(address)")
        }
        for (i, rule) in matches.enumerated() {
            print("  \(i == 0 ? "decided by" : "also matched") \(rule.source.list):\(rule.source.line): \(rule.source.text)\(rule.important ? " (important)" : "")")
        }
    }
}
