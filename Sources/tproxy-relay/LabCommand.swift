import ArgumentParser
import Foundation
import Lab

struct LabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "A network-namespace lab (client, router, upstream) to try the relay on one machine.",
        subcommands: [Up.self, Down.self, Demo.self])

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create the lab's namespaces and start its DNS server.")
        @Option(help: "The lab's name suffix (random when omitted).")
        var name: String?

        func run() throws {
            let lab = name.map(Lab.init(suffix:)) ?? Lab.random()
            try lab.up()
            print("lab \(lab.suffix) is up: client \(lab.client), router \(lab.router), upstream \(lab.upstream)")
            print("relay config for it: \(lab.stateDirectory)/relay.yaml")
            try lab.relayConfiguration().write(toFile: lab.stateDirectory + "/relay.yaml", atomically: true, encoding: .utf8)
            print("remove it with: tproxy-relay lab down --name \(lab.suffix)")
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the lab's processes and delete its namespaces.")
        @Option(help: "The lab's name suffix.")
        var name: String

        func run() throws {
            Lab(suffix: name).down()
            print("lab \(name) removed")
        }
    }

    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Bring a lab up, run the relay, show interception, answers from the address asked and fail-open, tear down.")

        func run() throws {
            let lab = Lab.random()
            // Ctrl-C or SIGTERM mid-demo still removes the namespaces.
            for sig in [SIGINT, SIGTERM] {
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler {
                    lab.down()
                    print("\n== interrupted; lab \(lab.suffix) removed")
                    Foundation.exit(130)
                }
                source.resume()
                Demo.sources.append(source)
            }
            let binary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
            guard try LabDemo(lab: lab, relayBinary: binary).run() else { throw ExitCode(1) }
        }

        nonisolated(unsafe) static var sources: [DispatchSourceSignal] = []
    }
}
