import Foundation
import RelayCore

/// `tproxy-relay lab demo`: brings a lab up, runs the relay in `rtr`, sends real queries from
/// `cli` to the LAN resolver and to a "hard-coded" one over IPv4 and IPv6, shows that each was
/// intercepted and answered from the address asked, shows fail-open after `kill -9`, and tears
/// everything down (also on Ctrl-C).
public struct LabDemo {
    public let lab: Lab
    /// Path of the tproxy-relay binary to run inside `rtr`.
    public let relayBinary: String
    let print: (String) -> Void

    static let demoZone = """
        $TTL 300
        @    IN SOA ns.home.lan. admin.home.lan. ( 1 3600 600 86400 60 )
        ns   IN A   10.53.5.1
        nas  IN A   10.53.5.10
        """

    public init(lab: Lab, relayBinary: String, print: @escaping (String) -> Void = { Swift.print($0) }) {
        self.lab = lab
        self.relayBinary = relayBinary
        self.print = print
    }

    /// Runs the demo; returns true when every check held.
    public func run() throws -> Bool {
        print("== lab \(lab.suffix): namespaces \(lab.namespaces.joined(separator: ", "))")
        try lab.up()
        defer {
            lab.down()
            print("== lab \(lab.suffix) removed")
        }
        print("   cli 10.53.1.2 → rtr (lan0 10.53.1.1 | wan0 10.53.2.1) → up: knotd on \(Lab.resolver), \(Lab.hardCoded), \(Lab.resolver6), \(Lab.hardCoded6)")

        // A local zone and a one-line block list, so the demo shows filtering, zones and the cache.
        let zones = lab.stateDirectory + "/zones"
        try FileManager.default.createDirectory(atPath: zones, withIntermediateDirectories: true)
        try Self.demoZone.write(toFile: zones + "/home.lan.zone", atomically: true, encoding: .utf8)
        let blockList = lab.stateDirectory + "/block.txt"
        try "||ads.lab.test^\n".write(toFile: blockList, atomically: true, encoding: .utf8)
        let config = lab.stateDirectory + "/relay.yaml"
        try lab.relayConfiguration(extra: "zones: \(zones)\nfilters:\n  lists: [\(blockList)]\n").write(toFile: config, atomically: true, encoding: .utf8)
        let log = lab.stateDirectory + "/relay.log"
        let pid = try Shell.spawn(["ip", "netns", "exec", lab.router, relayBinary, "run", "--config", config], log: log)
        try "\(pid)\n".write(toFile: lab.stateDirectory + "/relay.pid", atomically: true, encoding: .utf8)
        guard waitFor(log: log, containing: "relaying DNS") else {
            print("!! the relay did not start; its log:\n" + ((try? String(contentsOfFile: log, encoding: .utf8)) ?? ""))
            return false
        }
        print("== relay running in \(lab.router) (pid \(pid)); nft table:")
        print(indent((try? Shell.run(["ip", "netns", "exec", lab.router, "nft", "list", "table", "inet", "tproxy_relay"])) ?? "(nft not installed)"))

        var ok = true
        for (server, type) in [(Lab.resolver, "A"), (Lab.hardCoded, "A"), (Lab.resolver6, "AAAA"), (Lab.hardCoded6, "AAAA")] {
            let out = (try? Shell.run(["ip", "netns", "exec", lab.client, "kdig", "+time=2", "+retry=0", "@\(server)", "www.lab.test", type], allowFailure: true)) ?? ""
            let from = out.split(separator: "\n").first { $0.hasPrefix(";; From ") } ?? "no answer"
            let answer = out.split(separator: "\n").first { $0.hasPrefix("www.lab.test.") } ?? "no answer"
            let fromAsked = from.contains("\(server)@53")
            ok = ok && fromAsked
            print("-- cli: kdig @\(server) www.lab.test \(type)")
            print("   \(answer)")
            print("   \(from.trimmingCharacters(in: .whitespaces))  \(fromAsked ? "✓ answered from the address asked" : "✗ NOT from the address asked")")
        }

        for (name, expect, what) in [("ads.lab.test", "status: NXDOMAIN", "blocked by block.txt, answered by the relay"),
                                     ("nas.home.lan", "qr aa", "local zone home.lan, authoritative"),
                                     ("www.lab.test", "www.lab.test.", "asked again: answered from the cache (one for all workers; its TTL counts down)"),
                                     ("www.lab.test", "www.lab.test.", "and again"),
                                     ("www.lab.test", "www.lab.test.", "and again")] {
            let out = (try? Shell.run(["ip", "netns", "exec", lab.client, "kdig", "+time=2", "+retry=0", "@\(Lab.resolver)", name, "A"], allowFailure: true)) ?? ""
            let seen = out.contains(expect) && out.contains("From \(Lab.resolver)@53")
            ok = ok && seen
            let lines = out.split(separator: "\n")
            let answer = lines.first { $0.hasPrefix(name + ".") } ?? lines.first { $0.contains("status:") } ?? "no answer"
            print("-- cli: kdig @\(Lab.resolver) \(name) A: \(answer.trimmingCharacters(in: .whitespaces))  \(seen ? "✓" : "✗") \(what)")
        }

        kill(pid, SIGUSR1)
        usleep(300_000)
        let counters = lastLine(of: log, containing: "counters:")
        print("== relay counters: \(counters ?? "(none)")")
        if let counters, let answered = value(of: "answered", in: counters), let hits = value(of: "cache_hits", in: counters),
           let blocked = value(of: "blocked", in: counters), let local = value(of: "local", in: counters) {
            ok = ok && answered >= 7 && hits >= 2 && blocked == 1 && local == 1
        } else {
            ok = false
        }

        print("== kill -9 the relay: interception must vanish with it (fail-open)")
        kill(pid, SIGKILL)
        usleep(500_000)
        let tables = (try? Shell.run(["ip", "netns", "exec", lab.router, "nft", "list", "tables"], allowFailure: true)) ?? ""
        let gone = !tables.contains("tproxy_relay")
        print("   nft tables in rtr: \(tables.isEmpty ? "(none)" : tables.trimmingCharacters(in: .whitespacesAndNewlines))  \(gone ? "✓ gone" : "✗ still there")")
        let direct = (try? Shell.run(["ip", "netns", "exec", lab.client, "kdig", "+time=2", "+retry=0", "+short", "@\(Lab.resolver)", "www.lab.test", "A"], allowFailure: true)) ?? ""
        let answeredDirectly = direct.contains("10.53.2.80")
        print("   kdig @\(Lab.resolver) without the relay: \(direct.trimmingCharacters(in: .whitespacesAndNewlines))  \(answeredDirectly ? "✓ answered directly" : "✗ no answer")")
        ok = ok && gone && answeredDirectly
        print(ok ? "== demo passed" : "== demo FAILED")
        return ok
    }

    private func waitFor(log: String, containing text: String) -> Bool {
        for _ in 0..<100 {
            if let content = try? String(contentsOfFile: log, encoding: .utf8) {
                if content.contains(text) { return true }
                if content.contains("error:") { return false }
            }
            usleep(100_000)
        }
        return false
    }

    private func lastLine(of file: String, containing text: String) -> String? {
        guard let content = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        return content.split(separator: "\n").last { $0.contains(text) }.map(String.init)
    }

    private func value(of key: String, in line: String) -> Int? {
        for field in line.split(separator: " ") where field.hasPrefix("\(key)=") {
            return Int(field.dropFirst(key.count + 1))
        }
        return nil
    }

    private func indent(_ text: String) -> String {
        text.split(separator: "\n").map { "   " + $0 }.joined(separator: "\n")
    }
}
