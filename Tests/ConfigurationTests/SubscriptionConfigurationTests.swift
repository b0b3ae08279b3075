import Testing
@testable import Configuration
import RelayCore

/// `filters.lists` URLs and their keys, and `clients.names` (issue 23).
@Suite struct SubscriptionConfigurationTests {
    func parse(_ text: String) throws(ConfigurationError) -> Configuration {
        try ConfigurationParser(file: "/etc/relay/relay.yaml").parse(text)
    }

    @Test func urlsFilesAndMappingsKeepTheirOrder() throws {
        let config = try parse("""
            filters:
              lists:
                - rules/local.txt
                - https://lists.example.test/ads.txt
                - {url: "http://[fd53:4::53]:8080/x.txt", refresh: 6h, sha256: \(String(repeating: "AB", count: 32))}
              refresh: 12h
              ca_file: ca.pem
              cache_dir: /var/cache/relay/
              max_download_size: 8M
              download_timeout: 30s
            """)
        let f = config.filters
        #expect(f.lists == ["/etc/relay/rules/local.txt", "https://lists.example.test/ads.txt", "http://[fd53:4::53]:8080/x.txt"])
        #expect(f.subscriptions.map(\.url) == Array(f.lists.dropFirst()))
        #expect(f.subscriptions[1].refresh == 21_600 && f.subscriptions[1].sha256 == String(repeating: "ab", count: 32))
        #expect(f.refreshSeconds == 43_200 && f.refreshSeconds(of: f.subscriptions[0]) == 43_200)
        #expect(f.caFile == "/etc/relay/ca.pem" && f.cacheDirectory == "/var/cache/relay")
        #expect(f.maxDownloadBytes == 8 << 20 && f.downloadTimeoutSeconds == 30)
        #expect(f.localLists == ["/etc/relay/rules/local.txt"])
        let files = f.listFiles
        #expect(files[0] == "/etc/relay/rules/local.txt")
        #expect(files[1].hasPrefix("/var/cache/relay/lists.example.test-") && files[1].hasSuffix(".txt"))
        #expect(files[2].hasPrefix("/var/cache/relay/fd53_4__53-"))
        #expect(files[1] != files[2] && f.cachedListFiles == Set(files.dropFirst()))
        #expect(f.cachedListNames[files[1]] == "https://lists.example.test/ads.txt")
        #expect(config.warnings.isEmpty)
    }

    @Test func twoURLsOfOneHostGetTwoFiles() {
        let a = Configuration.ListSubscription(url: "https://h.test/a.txt"), b = Configuration.ListSubscription(url: "https://h.test/b.txt")
        #expect(a.cacheFile(in: "/c") != b.cacheFile(in: "/c"))
        #expect(a.cacheFile(in: "/c") == a.cacheFile(in: "/c"))
    }

    @Test func aShortRefreshIsWarnedAbout() throws {
        let config = try parse("filters:\n  lists: [https://h.test/a.txt]\n  refresh: 2s\n")
        #expect(config.filters.refreshSeconds == 2)
        #expect(config.warnings.first?.contains("relay.yaml:3: filters.refresh: a list is downloaded every 2 s") == true)
    }

    @Test func clientNameSources() throws {
        let config = try parse("""
            clients:
              names:
                hosts: [/etc/hosts, hosts.local]
                leases: [/var/lib/misc/dnsmasq.leases]
                ptr: 10.53.2.53
                ptr_qps: 5
                ptr_ttl: 1h
                ptr_negative_ttl: 5m
            filters:
              lists: [kids.txt]
              clients:
                - {match: [Kids-iPad, 10.53.1.0/24], lists: [kids.txt]}
            """)
        let names = config.clients.names
        #expect(names.hosts == ["/etc/hosts", "/etc/relay/hosts.local"] && names.leases == ["/var/lib/misc/dnsmasq.leases"])
        #expect(names.ptr == Endpoint(address: IPAddress("10.53.2.53")!, port: 53))
        #expect(names.ptrQueriesPerSecond == 5 && names.ptrTTL == 3600 && names.ptrNegativeTTL == 300)
        #expect(config.filters.clients[0].names == ["kids-ipad"])
        #expect(config.filters.clients[0].match == [IPPrefix("10.53.1.0/24")!])
    }

    /// Every bad input names file, line and key.
    @Test(arguments: [
        ("filters:\n  lists:\n    - a.txt\n    - ftp://h.test/x.txt\n", "relay.yaml:4: filters.lists: 'ftp://h.test/x.txt': unsupported scheme 'ftp'"),
        ("filters:\n  lists: [\"file:///etc/x.txt\"]\n", "relay.yaml:2: filters.lists: 'file:///etc/x.txt': unsupported scheme 'file'"),
        ("filters:\n  lists: [\"https://\"]\n", "relay.yaml:2: filters.lists: 'https://': the URL has no host"),
        ("filters:\n  lists: [\"https://user:pw@h.test/x\"]\n", "credentials in the URL are not supported"),
        ("filters:\n  lists: [\"https://h.test:99999/x\"]\n", "bad port '99999'"),
        ("filters:\n  lists: [\"https://[::zz]/x\"]\n", "'::zz' is not an IPv6 address"),
        ("filters:\n  lists: [\"https://h.test/a b\"]\n", "spaces, control or non-ASCII"),
        ("filters:\n  lists: [https://h.test/a, https://h.test/a]\n", "'https://h.test/a' is listed twice"),
        ("filters:\n  lists:\n    - {refresh: 1h}\n", "relay.yaml:3: filters.lists.url: an entry written as a mapping needs url:"),
        ("filters:\n  lists:\n    - {url: h.test/a}\n", "relay.yaml:3: filters.lists.url: 'h.test/a' is not a URL"),
        ("filters:\n  lists:\n    - {url: \"https://h.test/a\", sha256: abc}\n", "relay.yaml:3: filters.lists.sha256: expected 64 hexadecimal digits"),
        ("filters:\n  lists:\n    - {url: \"https://h.test/a\", mirror: x}\n", "relay.yaml:3: filters.lists.mirror: unknown key (expected one of url, refresh, sha256)"),
        ("filters:\n  lists: [\"\"]\n", "relay.yaml:2: filters.lists: an empty entry names no file"),
        ("filters:\n  refresh: 0s\n", "relay.yaml:2: filters.refresh: 0s is out of range"),
        ("filters:\n  max_download_size: 10\n", "relay.yaml:2: filters.max_download_size: 10 is out of range"),
        ("filters:\n  cache_dir: \"\"\n", "relay.yaml:2: filters.cache_dir: expected a directory"),
        ("clients:\n  names:\n    ptr: resolver.lan\n", "relay.yaml:3: clients.names.ptr: 'resolver.lan' is not an address"),
        ("clients:\n  names:\n    leases: /var/lib/misc/dnsmasq.leases\n", "relay.yaml:3: clients.names.leases: expected a list"),
        ("clients:\n  names:\n    mdns: true\n", "relay.yaml:3: clients.names.mdns: unknown key (expected one of hosts, leases, ptr, ptr_qps, ptr_ttl, ptr_negative_ttl)"),
        ("clients:\n  names:\n    ptr_qps: 0\n", "relay.yaml:3: clients.names.ptr_qps: 0 is out of range (1...1000)"),
        ("filters:\n  lists: [a.txt]\n  clients:\n    - {match: [kids-ipad], lists: [a.txt]}\n",
         "relay.yaml:4: filters.clients.match: 'kids-ipad' is a client name, but clients.names has no source"),
        ("filters:\n  lists: [a.txt]\n  clients:\n    - {match: [10.53.1.256], lists: [a.txt]}\n",
         "relay.yaml:4: filters.clients.match: '10.53.1.256' is not an address, a CIDR such as 10.53.1.0/24 or a client name"),
    ])
    func badInputsNameFileLineAndKey(_ yaml: String, _ expected: String) {
        #expect(throws: ConfigurationError.self) { try parse(yaml) }
        do { _ = try parse(yaml) } catch { #expect("\(error)".contains(expected), "\(error)") }
    }
}
