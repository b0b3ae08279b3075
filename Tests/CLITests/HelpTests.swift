import ArgumentParser
import Testing
@testable import tproxy_relay

/// The command line's shape, as a user sees it in --help.
@Suite struct HelpTests {
    @Test func rootListsTheCommands() {
        let help = TProxyRelay.helpMessage()
        for command in ["run", "check", "lab"] { #expect(help.contains("  \(command) "), "missing \(command)") }
        #expect(help.contains("USAGE: tproxy-relay <subcommand>"))
    }

    @Test func runTakesAConfigPath() {
        let help = Run.helpMessage()
        #expect(help.contains("-c, --config <config>"))
        #expect(help.contains("default: Configs/relay.yaml"))
        #expect(help.contains("--log-level"))
    }

    @Test func labHasUpDownDemo() {
        let help = LabCommand.helpMessage()
        for command in ["up", "down", "demo"] { #expect(help.contains("  \(command) "), "missing \(command)") }
    }

    @Test func explainTakesTypeAndClient() throws {
        let help = Explain.helpMessage()
        #expect(help.contains("--type <type>"))
        #expect(help.contains("--client <client>"))
        let command = try TProxyRelay.parseAsRoot(["explain", "ads.test", "--type", "AAAA", "--client", "10.53.1.7"])
        let explain = try #require(command as? Explain)
        #expect(explain.name == "ads.test" && explain.type == "AAAA" && explain.client == "10.53.1.7")
    }

    @Test func badArgumentsAreRejected() {
        #expect(throws: (any Error).self) { try TProxyRelay.parseAsRoot(["frobnicate"]) }
        #expect(throws: (any Error).self) { try TProxyRelay.parseAsRoot(["run", "--log-level", "loud"]) }
        #expect(throws: (any Error).self) { try TProxyRelay.parseAsRoot(["lab", "down"]) }
    }

    @Test func parsesRunWithAConfig() throws {
        let command = try TProxyRelay.parseAsRoot(["run", "--config", "/etc/relay.yaml"])
        let run = try #require(command as? Run)
        #expect(run.options.config == "/etc/relay.yaml")
    }
}
