import ArgumentParser
import RelayCore

/// The command line: `run`, `check`, `explain`, `tail`, `stats`, `update-lists`, `passwd`, `lab up|down|demo`.
@main
struct TProxyRelay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tproxy-relay",
        abstract: "A transparent DNS relay: captures a LAN's DNS with nftables TPROXY and answers from the address each client asked.",
        version: BuildInfo.version,
        subcommands: [Run.self, Check.self, Explain.self, Tail.self, Stats.self, UpdateLists.self, Passwd.self, LabCommand.self]
    )
}

/// Options every command that reads the configuration shares.
struct ConfigOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "The configuration file.")
    var config: String = "Configs/relay.yaml"
}
