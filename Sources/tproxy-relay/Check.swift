import ArgumentParser
import Relay

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate the configuration; errors name the file, line and key.",
        discussion: "Exits 0 when the configuration is valid (warnings are printed), 1 otherwise.")

    @OptionGroup var options: ConfigOptions

    func run() throws {
        do {
            let configuration = try ConfigurationParser.load(path: options.config)
            for warning in configuration.warnings { print("warning: \(warning)") }
            let workers = configuration.workers.map(String.init) ?? "auto"
            print("\(options.config): ok (interfaces: \(configuration.intercept.interfaces.joined(separator: ", ")); workers: \(workers); upstream: \(configuration.upstream.mode.rawValue))")
        } catch {
            print("error: \(error)")
            throw ExitCode(1)
        }
    }
}
