import RelayCore
import Testing
@testable import ClientNames

/// The names files' parsers (bad lines named by file:line, the rest used), the table's
/// precedence, and the writer's view: bounded lookups, asks only for unnamed addresses.
@Suite struct ClientNamesTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
    static func names(_ c: NameFileContents) -> [String] { c.names.map { "\($0.address) \($0.name)" } }
    static func text(_ bytes: UnsafeRawBufferPointer?) -> String? { bytes.map { String(decoding: $0, as: UTF8.self) } }

    @Test func hostsFilesTakeTheFirstNameOfALineAndTheFirstLineOfAnAddress() {
        let c = HostsFile.parse(Self.bytes("""
            # comment
            127.0.0.1\tlocalhost
            10.53.1.3 Printer.LAN. printer   # the office printer
            10.53.1.3 other-name
            fd53:1::2 laptop6
            not-an-address kids
            10.53.1.9
            10.53.1.8 bad/name
            \r
            """), file: "/etc/hosts")
        #expect(Self.names(c) == ["127.0.0.1 localhost", "10.53.1.3 printer.lan", "fd53:1::2 laptop6"])
        #expect(c.problems.map(\.description) == [
            "/etc/hosts:6: 'not-an-address' is not an IP address",
            "/etc/hosts:7: no name after 10.53.1.9",
            "/etc/hosts:8: 'bad/name' is not a host name",
        ])
    }

    @Test func dnsmasqLeasesWithGarbageLines() {
        let c = LeaseFile.parse(Self.bytes("""
            1767225600 02:00:0a:35:01:02 10.53.1.2 kids-ipad 01:02:00:0a:35:01:02
            garbage here
            1767225600 02:00:0a:35:01:05 10.53.1.5 * *
            duid 00:01:00:01:2a:2b:2c:2d:02:00:0a:35:01:01
            1767225600 1234 fd53:1::20 phone6 00:01:00:01
            1767225600 02:00:0a:35:01:06 10.53.1.256 x *
            1767225600 02:00:0a:35:01:07 10.53.1.7 "quoted" *
            """), file: "/var/lib/misc/dnsmasq.leases")
        #expect(Self.names(c) == ["10.53.1.2 kids-ipad", "fd53:1::20 phone6"])
        #expect(c.problems.map(\.line) == [2, 6, 7])
        #expect(c.problems[0].description.hasPrefix("/var/lib/misc/dnsmasq.leases:2: not a dnsmasq lease"))
    }

    @Test func iscLeasesKeepTheLastActiveBlockOfAnAddress() {
        let c = LeaseFile.parse(Self.bytes("""
            # The format of this file is documented in the dhcpd.leases(5) manual page.
            authoring-byte-order little-endian;
            lease 10.53.1.20 {
              starts 3 2026/12/02 07:00:00;
              binding state active;
              client-hostname "old-name";
            }
            lease 10.53.1.21 {
              binding state free;
              client-hostname "gone";
            }
            lease 10.53.1.20 {
              binding state active;
              client-hostname "New-Name";
            }
            lease banana {
            }
            lease 10.53.1.22 {
              binding state active;
            }
            """), file: "dhcpd.leases")
        #expect(LeaseFile.format(of: NameFileContents.lines(Self.bytes("lease 1.2.3.4 {\n"))) == .isc)
        #expect(Self.names(c) == ["10.53.1.20 new-name"])
        #expect(c.problems.map(\.line) == [16])
    }

    @Test func keaCSVByItsHeader() {
        let c = LeaseFile.parse(Self.bytes("""
            address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context
            10.53.1.30,02:00:00:00:00:30,,3600,1767225600,1,0,0,tv.lan,0,
            10.53.1.31,02:00:00:00:00:31,,3600,1767225600,1,0,0,declined,1,
            10.53.1.32,02:00:00:00:00:32,,3600,1767225600,1,0,0,,0,
            short,row
            10.53.1.30,02:00:00:00:00:30,,3600,1767229200,1,0,0,tv-renamed,0,
            """), file: "kea-leases4.csv")
        #expect(Self.names(c) == ["10.53.1.30 tv-renamed"])
        #expect(c.problems.map(\.line) == [5])
        let headless = LeaseFile.kea(NameFileContents.lines(Self.bytes("address,hwaddr\n10.53.1.1,x\n")), file: "k.csv")
        #expect(headless.problems.map(\.reason) == ["a Kea header without a hostname column", "a Kea lease row before the header"])
    }

    @Test func hostileBytesNeverTrap() {
        var seed: UInt64 = 23
        for _ in 0..<200 {
            var bytes: [UInt8] = []
            for _ in 0..<Int(seed % 300) {
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                bytes.append(UInt8(truncatingIfNeeded: seed >> 33))
            }
            _ = HostsFile.parse(bytes, file: "h")
            _ = LeaseFile.parse(bytes, file: "l")
            _ = LeaseFile.parse(Array("address,hostname\n".utf8) + bytes, file: "k")
            _ = LeaseFile.parse(Array("lease 10.0.0.1 {\n".utf8) + bytes, file: "i")
        }
    }

    @Test func namesAreKeptToHostNameCharacters() {
        #expect(ClientNameText.normalize("Kids-iPad.LAN.") == "kids-ipad.lan")
        #expect(ClientNameText.normalize("my_host") == "my_host")
        for bad in ["", ".", ".lead", "with space", "quote\"", "back\\slash", "<script>", "é", String(repeating: "a", count: 254)] {
            #expect(ClientNameText.normalize(bad) == nil, "\(bad)")
        }
    }

    @Test func hostsFilesComeBeforeLeasesAndNamesMapBackToAddresses() {
        let hosts = HostsFile.parse(Self.bytes("10.53.1.2 static-name\n"), file: "h")
        let leases = LeaseFile.parse(Self.bytes("0 m 10.53.1.2 dhcp-name *\n0 m 10.53.1.3 kids *\n0 m fd53:1::3 kids *\n"), file: "l")
        let table = ClientNameTable([(.hosts, hosts), (.leases, leases)])
        #expect(table.entry(for: IPAddress("10.53.1.2")!) == .init(name: "static-name", source: .hosts))
        #expect(table.addresses(named: "kids") == [IPAddress("10.53.1.3")!, IPAddress("fd53:1::3")!])
        #expect(table.count(from: .leases) == 2 && table.count(from: .hosts) == 1)
    }

    @Test func theViewAsksOnceAndKeepsResultsForTheirTime() {
        let directory = ClientNameDirectory(reverseLookups: true)
        directory.publish(ClientNameTable([(.leases, LeaseFile.parse(Self.bytes("0 m 10.53.1.2 kids *\n"), file: "l"))]))
        let view = ClientNameView(directory: directory)
        view.refresh(now: 100)
        let named = IPAddress("10.53.1.2")!, unnamed = IPAddress("10.53.1.9")!
        #expect(Self.text(view.name(for: named, now: 100)) == "kids")
        #expect(Self.text(view.name(for: unnamed, now: 100)) == nil)
        #expect(Self.text(view.name(for: unnamed, now: 101)) == nil)
        #expect(directory.takeWaiting(limit: 10) == [unnamed])  // asked once, not per line
        directory.deliver(.init(address: unnamed, name: "tv.lab.test", expires: 200))
        view.refresh(now: 102)
        #expect(Self.text(view.name(for: unnamed, now: 102)) == "tv.lab.test")
        #expect(Self.text(view.name(for: named, now: 102)) == "kids")
        // Expired: asked again.
        #expect(Self.text(view.name(for: unnamed, now: 201)) == nil)
        #expect(directory.takeWaiting(limit: 10) == [unnamed])
        // A new table (a lease file changed) is taken at the next refresh.
        directory.publish(ClientNameTable([(.leases, LeaseFile.parse(Self.bytes("0 m 10.53.1.2 kids-laptop *\n"), file: "l"))]))
        view.refresh(now: 202)
        #expect(Self.text(view.name(for: named, now: 202)) == "kids-laptop")
    }

    @Test func aFloodOfNewClientsIsBounded() {
        let directory = ClientNameDirectory(reverseLookups: true)
        let view = ClientNameView(directory: directory)
        view.refresh(now: 1)
        for i in 0..<50_000 {
            _ = Self.text(view.name(for: .v4(IPv4Address(rawValue: 0x0a35_0000 | UInt32(i))), now: 1))
        }
        #expect(view.rememberedLookups <= ClientNameView.maxLookups)
        #expect(directory.takeWaiting(limit: 100_000).count == ClientNameDirectory.maxWaiting)
        #expect(directory.droppedAsks == 50_000 - ClientNameDirectory.maxWaiting)
        for i in 0..<5_000 { directory.deliver(.init(address: .v4(IPv4Address(rawValue: UInt32(i))), name: nil, expires: 9)) }
        #expect(directory.takeResults().count == ClientNameDirectory.maxResults)
    }

    @Test func withoutReverseLookupsNothingIsAsked() {
        let directory = ClientNameDirectory(reverseLookups: false)
        let view = ClientNameView(directory: directory)
        view.refresh(now: 1)
        #expect(Self.text(view.name(for: IPAddress("10.53.1.9")!, now: 1)) == nil)
        #expect(directory.takeWaiting(limit: 10).isEmpty)
    }
}
