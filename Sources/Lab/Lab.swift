import Foundation
import RelayCore

/// A network-namespace lab on one machine: `cli` → `rtr` → `up`, as in DESIGN.md.
///
///     cli  10.53.1.2  fd53:1::2  (cli0) ── lan0 10.53.1.1 fd53:1::1 [rtr] wan0 10.53.2.1 fd53:2::1 ── (up0) up
///     up:  10.53.2.53 fd53:2::53 (the LAN's resolver), 10.53.3.53 fd53:3::53 (a "hard-coded" resolver),
///          10.53.4.53-54 fd53:4::53-54 (free for test servers)
///
/// `up` runs knotd serving `lab.test.` on all four addresses. Every namespace name carries the
/// lab's suffix, so parallel labs never collide; only 10.53.0.0/16 and fd53::/16 are used.
public struct Lab: Sendable {
    public let suffix: String

    public init(suffix: String) { self.suffix = suffix }

    /// A lab with a fresh random suffix.
    public static func random() -> Lab {
        Lab(suffix: String(UInt32.random(in: 0..<UInt32.max), radix: 36))
    }

    public var client: String { "tr-cli-\(suffix)" }
    public var router: String { "tr-rtr-\(suffix)" }
    public var upstream: String { "tr-up-\(suffix)" }
    public var namespaces: [String] { [client, router, upstream] }
    public var stateDirectory: String { "/tmp/tproxy-relay-lab-\(suffix)" }

    public static let resolver = "10.53.2.53"
    public static let resolver6 = "fd53:2::53"
    public static let hardCoded = "10.53.3.53"
    public static let hardCoded6 = "fd53:3::53"

    /// Creates the namespaces, links, addresses and routes, and starts knotd in `up`.
    public func up() throws {
        for tool in ["ip", "knotd", "knotc"] where !Shell.which(tool) {
            throw RelayError(.lab, "the lab needs `\(tool)` (scripts/setup.sh installs it)")
        }
        down()
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        do {
            try createTopology()
            try startUpstream()
        } catch {
            down()
            throw error
        }
    }

    private func ip(_ arguments: String...) throws { try Shell.run(["ip"] + arguments) }
    private func inside(_ namespace: String, _ arguments: [String]) throws {
        try Shell.run(["ip", "netns", "exec", namespace] + arguments)
    }

    private func createTopology() throws {
        for ns in namespaces {
            try ip("netns", "add", ns)
            try ip("-n", ns, "link", "set", "lo", "up")
            try inside(ns, ["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
                            "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0"])
        }
        try ip("link", "add", "cli0", "netns", client, "type", "veth", "peer", "name", "lan0", "netns", router)
        try ip("link", "add", "wan0", "netns", router, "type", "veth", "peer", "name", "up0", "netns", upstream)

        try ip("-n", client, "addr", "add", "10.53.1.2/24", "dev", "cli0")
        try ip("-n", client, "addr", "add", "fd53:1::2/64", "dev", "cli0", "nodad")
        try ip("-n", client, "link", "set", "cli0", "up")
        try ip("-n", client, "route", "add", "default", "via", "10.53.1.1")
        try ip("-n", client, "-6", "route", "add", "default", "via", "fd53:1::1")

        try ip("-n", router, "addr", "add", "10.53.1.1/24", "dev", "lan0")
        try ip("-n", router, "addr", "add", "fd53:1::1/64", "dev", "lan0", "nodad")
        try ip("-n", router, "addr", "add", "10.53.2.1/24", "dev", "wan0")
        try ip("-n", router, "addr", "add", "fd53:2::1/64", "dev", "wan0", "nodad")
        try ip("-n", router, "link", "set", "lan0", "up")
        try ip("-n", router, "link", "set", "wan0", "up")
        try ip("-n", router, "route", "add", "10.53.3.0/24", "via", "10.53.2.53")
        try ip("-n", router, "-6", "route", "add", "fd53:3::/64", "via", "fd53:2::53")
        try ip("-n", router, "route", "add", "10.53.4.0/24", "via", "10.53.2.53")
        try ip("-n", router, "-6", "route", "add", "fd53:4::/64", "via", "fd53:2::53")
        try inside(router, ["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                            "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
                            "net.ipv4.conf.lan0.rp_filter=0", "net.ipv4.conf.wan0.rp_filter=0"])

        try ip("-n", upstream, "addr", "add", "10.53.2.53/24", "dev", "up0")
        try ip("-n", upstream, "addr", "add", "fd53:2::53/64", "dev", "up0", "nodad")
        try ip("-n", upstream, "addr", "add", "10.53.3.53/32", "dev", "lo")
        try ip("-n", upstream, "addr", "add", "fd53:3::53/128", "dev", "lo")
        // 10.53.4.0/24 and fd53:4::/64: addresses for test servers that tests start themselves.
        for address in ["10.53.4.53/32", "10.53.4.54/32"] { try ip("-n", upstream, "addr", "add", address, "dev", "lo") }
        for address in ["fd53:4::53/128", "fd53:4::54/128"] { try ip("-n", upstream, "addr", "add", address, "dev", "lo") }
        try ip("-n", upstream, "link", "set", "up0", "up")
        try ip("-n", upstream, "route", "add", "default", "via", "10.53.2.1")
        try ip("-n", upstream, "-6", "route", "add", "default", "via", "fd53:2::1")
    }

    /// The zone `up` serves. Each address of `up` answers the same data; what tells them apart in
    /// a test is the source address of the answer. `big.lab.test` has twelve 250-byte TXT
    /// records (about 3 KB): knotd truncates it over UDP (its udp-max-payload is 1232), so it
    /// exercises both the relay's TCP retry upstream and its truncation toward small clients.
    public static let zone = """
        $ORIGIN lab.test.
        $TTL 300
        @        IN SOA ns.lab.test. hostmaster.lab.test. 1 3600 900 604800 60
        @        IN NS  ns
        ns       IN A   10.53.2.53
        ns       IN AAAA fd53:2::53
        www      IN A   10.53.2.80
        www      IN AAAA fd53:2::80
        alias    IN CNAME www
        *.wild   IN A   10.53.2.100
        *.bench  IN A   10.53.2.100
        big      IN TXT  "00-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        big      IN TXT  "01-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        big      IN TXT  "02-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        big      IN TXT  "03-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        big      IN TXT  "04-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        big      IN TXT  "05-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        big      IN TXT  "06-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        big      IN TXT  "07-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        big      IN TXT  "08-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        big      IN TXT  "09-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        big      IN TXT  "10-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        big      IN TXT  "11-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

        """

    /// Reverse zones for the LAN (PTR names of clients, `clients.names.ptr`): the client's
    /// addresses are named; 10.53.1.3 has no PTR (a client nothing names).
    public static let reverseZones: [(origin: String, text: String)] = [
        ("1.53.10.in-addr.arpa", """
            $ORIGIN 1.53.10.in-addr.arpa.
            $TTL 300
            @   IN SOA ns.lab.test. hostmaster.lab.test. 1 3600 900 604800 60
            @   IN NS  ns.lab.test.
            2   IN PTR lab-client.lab.test.

            """),
        ("1.0.0.0.3.5.d.f.ip6.arpa", """
            $ORIGIN 1.0.0.0.3.5.d.f.ip6.arpa.
            $TTL 300
            @   IN SOA ns.lab.test. hostmaster.lab.test. 1 3600 900 604800 60
            @   IN NS  ns.lab.test.
            2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 IN PTR lab-client6.lab.test.

            """),
    ]

    private func startUpstream() throws {
        let dir = stateDirectory + "/knot"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Self.zone.write(toFile: dir + "/lab.test.zone", atomically: true, encoding: .utf8)
        for (origin, text) in Self.reverseZones { try text.write(toFile: dir + "/\(origin).zone", atomically: true, encoding: .utf8) }
        let config = """
            server:
                rundir: "\(dir)"
                pidfile: "\(dir)/knot.pid"
                listen: [ 10.53.2.53@53, 10.53.3.53@53, fd53:2::53@53, fd53:3::53@53 ]
                udp-workers: 1
                tcp-workers: 1
                background-workers: 1
            log:
              - target: "\(dir)/knot.log"
                any: info
            database:
                storage: "\(dir)/db"
            control:
                listen: "\(dir)/knot.sock"
            template:
              - id: default
                storage: "\(dir)"
                file: "%s.zone"
                semantic-checks: off
                journal-content: none
                zonefile-sync: -1
            zone:
              - domain: lab.test.
            \(Self.reverseZones.map { "  - domain: \($0.origin)." }.joined(separator: "\n"))

            """
        try config.write(toFile: dir + "/knot.conf", atomically: true, encoding: .utf8)
        let pid = try Shell.spawn(["ip", "netns", "exec", upstream, "knotd", "-c", dir + "/knot.conf"], log: dir + "/knotd.out")
        try "\(pid)\n".write(toFile: stateDirectory + "/knotd.pid", atomically: true, encoding: .utf8)
        for _ in 0..<100 {
            if let out = try? Shell.run(["ip", "netns", "exec", client, "kdig", "+time=1", "+retry=0", "+short", "@\(Self.resolver)", "www.lab.test", "A"]),
               out.contains("10.53.2.80") {
                return
            }
            usleep(100_000)
        }
        throw RelayError(.lab, "knotd in \(upstream) did not answer on \(Self.resolver); see \(dir)/knotd.out")
    }

    /// Stops what the lab started and deletes its namespaces. Safe to call on a lab that is half
    /// built or already gone.
    public func down() {
        if let enumerator = FileManager.default.enumerator(atPath: stateDirectory) {
            for case let file as String in enumerator where file.hasSuffix(".pid") {
                if let text = try? String(contentsOfFile: stateDirectory + "/" + file, encoding: .utf8),
                   let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1 {
                    kill(-pid, SIGTERM)
                    kill(pid, SIGTERM)
                }
            }
        }
        // Anything still running inside our namespaces (a relay started by hand, say).
        for ns in namespaces {
            if let pids = try? Shell.run(["ip", "netns", "pids", ns], allowFailure: true) {
                for pid in pids.split(separator: "\n").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
            }
        }
        for ns in namespaces { _ = try? Shell.run(["ip", "netns", "del", ns], allowFailure: true) }
        try? FileManager.default.removeItem(atPath: stateDirectory)
    }

    /// A relay configuration for this lab (capture on lan0, forward to the address asked).
    public func relayConfiguration(extra: String = "") -> String {
        """
        # written by `tproxy-relay lab` for lab \(suffix)
        intercept:
          interfaces: [lan0]
          dns: true
        listen:
          address: 127.0.0.1
          address6: "::1"
          dns_port: 15353
        workers: auto
        upstream:
          mode: original
          timeout: 2s
        \(extra)
        """
    }
}
