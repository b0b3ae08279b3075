import Foundation
import Testing
@testable import Configuration
import RelayCore
import Rules

@Suite struct ConfigurationParserTests {
    func parse(_ text: String) throws(ConfigurationError) -> Configuration {
        try ConfigurationParser(file: "relay.yaml").parse(text)
    }

    @Test func emptyFileGivesDefaults() throws {
        let config = try parse("")
        #expect(config == Configuration())
        #expect(config.intercept.mark == 0x53)
        #expect(config.listen.dnsPort == 15353)
        #expect(config.upstream.timeoutMilliseconds == 2000)
    }

    @Test func theShippedConfigurationIsValid() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Configs/relay.yaml")
        let config = try ConfigurationParser.load(path: url.path)
        #expect(config.intercept.interfaces == ["lan0"])
        #expect(config.upstream.mode == .original)
        #expect(config.warnings.isEmpty)
    }

    @Test func everyKeyIsRead() throws {
        let config = try parse("""
            intercept:
              interfaces: [lan0, wlan0]
              dns: true
              mark: 0x10
              bypass_mark: 17
              route_table: 1000
              rule_priority: 200
              table: my_relay
            listen:
              address: 127.0.0.2
              address6: none
              dns_port: 5353
            workers: 3
            upstream:
              mode: servers
              servers: ["10.53.2.53", "10.53.3.53:5353", "[fd53:2::53]:53"]
              timeout: 750ms
              sockets: 4
              max_in_flight: 1024
            tcp:
              idle_timeout: 3s
              max_lifetime: 1m
              max_connections: 100
              max_connections_per_client: 5
              max_queries_per_connection: 50
              max_message_size: 4096
              max_pending_output: 100000
            """)
        #expect(config.tcp.idleTimeoutMilliseconds == 3000)
        #expect(config.tcp.maxLifetimeMilliseconds == 60000)
        #expect(config.tcp.maxConnections == 100)
        #expect(config.tcp.maxConnectionsPerClient == 5)
        #expect(config.tcp.maxQueriesPerConnection == 50)
        #expect(config.tcp.maxMessageSize == 4096)
        #expect(config.tcp.maxPendingOutput == 100000)
        #expect(config.intercept.interfaces == ["lan0", "wlan0"])
        #expect(config.intercept.mark == 0x10)
        #expect(config.intercept.bypassMark == 17)
        #expect(config.intercept.routeTable == 1000)
        #expect(config.intercept.rulePriority == 200)
        #expect(config.intercept.table == "my_relay")
        #expect(config.listen.address == IPAddress("127.0.0.2"))
        #expect(config.listen.address6 == nil)
        #expect(config.listen.dnsPort == 5353)
        #expect(config.workers == 3)
        #expect(config.upstream.mode == .servers)
        #expect(config.upstream.servers.map(\.description) == ["10.53.2.53:53", "10.53.3.53:5353", "[fd53:2::53]:53"])
        #expect(config.upstream.timeoutMilliseconds == 750)
        #expect(config.upstream.sockets == 4)
        #expect(config.upstream.maxInFlight == 1024)
    }

    @Test func bypassAnswersAreOnByDefaultAndEachCanBeSwitchedOff() throws {
        let defaults = Configuration().bypass
        #expect(defaults.ddr == .nodata && defaults.firefoxCanary == .nxdomain && defaults.privateRelay == .nxdomain)
        #expect(!defaults.blockEncryptedDNS && defaults.blockAddresses.isEmpty)
        let off = try parse("bypass:\n  ddr: off\n  firefox_canary: false\n  private_relay: no\n  block_encrypted_dns: true\n  block_addresses: [doh.txt]\n").bypass
        #expect(off.ddr == nil && off.firefoxCanary == nil && off.privateRelay == nil && off.blockEncryptedDNS)
        #expect(off.blockAddresses.count == 1 && off.blockAddresses[0].hasSuffix("doh.txt"))
        #expect(try parse("bypass:\n  ddr: nxdomain\n").bypass.ddr == .nxdomain)
    }

    @Test func metricsListenTakesOneAddressOrAList() throws {
        #expect(try parse("metrics:\n  listen: 127.0.0.1\n").metrics.listen == [Endpoint(address: IPAddress("127.0.0.1")!, port: 9153)])
        #expect(try parse("metrics:\n  listen: [\"10.53.0.1:9100\", \"[::1]\"]\n").metrics.listen
                == [Endpoint(address: IPAddress("10.53.0.1")!, port: 9100), Endpoint(address: IPAddress("::1")!, port: 9153)])
        #expect(Configuration().metrics.listen.isEmpty)
    }

    @Test func webListenPasswordFileAndSession() throws {
        let defaults = Configuration().web
        #expect(defaults.listen.isEmpty && defaults.passwordFile == "/var/lib/tproxy-relay/web-password" && defaults.sessionSeconds == 43_200)
        let web = try parse("web:\n  listen: [10.53.1.1, \"[::1]:8080\"]\n  password_file: /etc/tproxy-relay/web.hash\n  session: 30m\n").web
        #expect(web.listen == [Endpoint(address: IPAddress("10.53.1.1")!, port: 8053), Endpoint(address: IPAddress("::1")!, port: 8080)])
        #expect(web.passwordFile == "/etc/tproxy-relay/web.hash" && web.sessionSeconds == 1800)
    }

    @Test func dnstapTargetsAndMessages() throws {
        #expect(Configuration().dnstap.target == nil && Configuration().dnstap.messages == [.clientResponse])
        #expect(try parse("dnstap:\n  socket: unix:/run/tproxy-relay/dnstap.sock\n").dnstap.target == .unix("/run/tproxy-relay/dnstap.sock"))
        #expect(try parse("dnstap:\n  socket: /run/dnstap.sock\n").dnstap.target == .unix("/run/dnstap.sock"))
        #expect(try parse("dnstap:\n  socket: \"tcp:[fd53:2::9]:6000\"\n").dnstap.target == .tcp(Endpoint(address: IPAddress("fd53:2::9")!, port: 6000)))
        #expect(try parse("dnstap:\n  tcp: \"10.53.2.9:6000\"\n").dnstap.target == .tcp(Endpoint(address: IPAddress("10.53.2.9")!, port: 6000)))
        let file = try parse("dnstap:\n  file: tap.fstrm\n  identity: router-7\n  version: v1\n  queue: 100\n  messages: [client_query, forwarder_response]\n").dnstap
        #expect(file.target == .file("tap.fstrm"))
        #expect(file.identity == "router-7" && file.version == "v1" && file.queue == 100)
        #expect(file.messages == [.clientQuery, .forwarderResponse])
    }

    @Test func quicAndLimitsSections() throws {
        let config = try parse("""
            intercept:
              interfaces: [lan0]
              quic: false
            quic:
              sniff: false
              block: true
              idle_timeout: 30s
              hold_time: 150ms
              hold_datagrams: 3
            limits:
              max_quic_flows: 500
            zones: zones/
            filters:
              lists: [ads.txt, /etc/block.txt]
              block_with: 0.0.0.0
              ttl: 60
            """)
        #expect(config.warnings.isEmpty)
        #expect(config.intercept.quic == false)
        var quic = Configuration.QUIC()
        (quic.sniff, quic.block, quic.idleTimeoutMilliseconds, quic.holdMilliseconds, quic.holdDatagrams) = (false, true, 30_000, 150, 3)
        #expect(config.quic == quic)
        #expect(config.limits.maxQUICFlows == 500)
        #expect(Configuration().intercept.quic && Configuration().quic.sniff && !Configuration().quic.block)
        #expect(config.zones == "zones")
        #expect(config.filters.lists == ["ads.txt", "/etc/block.txt"])
        #expect(config.filters.blockWith == .address(IPAddress("0.0.0.0")!))
        #expect(config.filters.ttl == 60)
    }

    /// Every bad input names file, line and key.
    @Test(arguments: [
        ("intercept:\n  interfaces: lan0\n", "relay.yaml:2: intercept.interfaces: expected a list, such as [lan0]"),
        ("intercept:\n  interfaces: [\"this-name-is-too-long0\"]\n", "relay.yaml:2: intercept.interfaces: 'this-name-is-too-long0' is not a valid interface name"),
        ("intercept:\n  mark: 0\n", "relay.yaml:2: intercept.mark: must not be 0 (unmarked packets carry 0)"),
        ("intercept:\n  mark: banana\n", "relay.yaml:2: intercept.mark: expected a whole number, got 'banana'"),
        ("intercept:\n  route_table: 254\n", "relay.yaml:2: intercept.route_table: 254 is a kernel table (default, main, local); choose another"),
        ("intercept:\n  rule_priority: 40000\n", "relay.yaml:2: intercept.rule_priority: 40000 is out of range (1...32765)"),
        ("intercept:\n  dns: maybe\n", "relay.yaml:2: intercept.dns: expected true or false"),
        ("intercept:\n  colour: red\n", "relay.yaml:2: intercept.colour: unknown key (expected one of interfaces, dns, quic, mark, bypass_mark, route_table, rule_priority, local, local_mark, identity_mark, local_bypass_users, local_bypass_groups, table)"),
        ("intercept:\n  mark: 5\n  bypass_mark: 5\n", "relay.yaml:3: intercept.bypass_mark: must differ from intercept.mark, or the relay's own queries would be captured again"),
        ("listen:\n  address: \"::1\"\n", "relay.yaml:2: listen.address: expected an IPv4 address such as 127.0.0.1"),
        ("listen:\n  address6: 127.0.0.1\n", "relay.yaml:2: listen.address6: expected an IPv6 address such as ::1, or none"),
        ("listen:\n  dns_port: 70000\n", "relay.yaml:2: listen.dns_port: 70000 is out of range (1...65535)"),
        ("workers: 0\n", "relay.yaml:1: workers: 0 is out of range (1...1024)"),
        ("metrics:\n  listen: localhost:9153\n", "relay.yaml:2: metrics.listen: 'localhost:9153' is not an address to listen on (127.0.0.1:9153, [::1]:9153)"),
        ("metrics:\n  listen: [\"127.0.0.1:0\"]\n", "relay.yaml:2: metrics.listen: '127.0.0.1:0' is not an address to listen on (127.0.0.1:9153, [::1]:9153)"),
        ("metrics:\n  listen: [127.0.0.1, \"127.0.0.1:9153\"]\n", "relay.yaml:2: metrics.listen: 127.0.0.1:9153 is named twice"),
        ("metrics:\n  listen: {a: 1}\n", "relay.yaml:2: metrics.listen: expected a single value"),
        ("web:\n  listen: dashboard:8053\n", "relay.yaml:2: web.listen: 'dashboard:8053' is not an address to listen on (127.0.0.1:8053, [::1]:8053)"),
        ("web:\n  listen: [10.53.1.1, \"10.53.1.1:8053\"]\n", "relay.yaml:2: web.listen: 10.53.1.1:8053 is named twice"),
        ("web:\n  password_file: web-password\n", "relay.yaml:2: web.password_file: expected an absolute path, got 'web-password'"),
        ("web:\n  session: 10s\n", "relay.yaml:2: web.session: 10s is out of range (60000ms...2592000s)"),
        ("web:\n  port: 80\n", "relay.yaml:2: web.port: unknown key (expected one of listen, password_file, session)"),
        ("bypass:\n  ddr: refused\n", "relay.yaml:2: bypass.ddr: expected nodata, nxdomain or off, got 'refused'"),
        ("bypass:\n  firefox_canary: nodata\n", "relay.yaml:2: bypass.firefox_canary: expected nxdomain or off, got 'nodata'"),
        ("bypass:\n  private_relay: [a]\n", "relay.yaml:2: bypass.private_relay: expected a single value"),
        ("bypass:\n  block_encrypted_dns: sometimes\n", "relay.yaml:2: bypass.block_encrypted_dns: expected true or false"),
        ("bypass:\n  block_addresses: doh.txt\n", "relay.yaml:2: bypass.block_addresses: expected a list, such as [lan0]"),
        ("bypass:\n  canary: off\n", "relay.yaml:2: bypass.canary: unknown key (expected one of ddr, firefox_canary, private_relay, block_encrypted_dns, block_addresses)"),
        ("limits:\n  client_qps: -1\n", "relay.yaml:2: limits.client_qps: -1 is out of range (0...1000000)"),
        ("limits:\n  client_prefix_v4: 33\n", "relay.yaml:2: limits.client_prefix_v4: 33 is out of range (8...32)"),
        ("limits:\n  exempt: [10.53.1.0/40]\n", "relay.yaml:2: limits.exempt: '10.53.1.0/40' is not an address or CIDR such as 10.53.1.0/24"),
        ("limits:\n  action: tarpit\n", "relay.yaml:2: limits.action: expected drop, refused or slip, got 'tarpit'"),
        ("dnstap:\n  socket: /run/dnstap.sock\n  tcp: \"10.53.2.9:6000\"\n", "relay.yaml:3: dnstap.tcp: a second target (the section already sends to unix:/run/dnstap.sock); name one of socket, tcp, file"),
        ("dnstap:\n  socket: udp:10.53.2.9:6000\n", "relay.yaml:2: dnstap.socket: expected unix:/run/tproxy-relay/dnstap.sock, tcp:10.0.0.5:6000 or file:/var/log/tproxy-relay/dnstap.fstrm, got 'udp:10.53.2.9:6000'"),
        ("dnstap:\n  socket: tcp:collector.lan:6000\n", "relay.yaml:2: dnstap.socket: 'collector.lan:6000' is not a collector's address and port (10.0.0.5:6000, [fd00::5]:6000; an address, not a name)"),
        ("dnstap:\n  tcp: 10.53.2.9\n", "relay.yaml:2: dnstap.tcp: '10.53.2.9' is not a collector's address and port (10.0.0.5:6000, [fd00::5]:6000; an address, not a name)"),
        ("dnstap:\n  tcp: \"0.0.0.0:6000\"\n", "relay.yaml:2: dnstap.tcp: '0.0.0.0:6000' is not a collector's address and port (10.0.0.5:6000, [fd00::5]:6000; an address, not a name)"),
        ("dnstap:\n  socket: unix:/\(String(repeating: "d", count: 120))\n", "relay.yaml:2: dnstap.socket: '/\(String(repeating: "d", count: 120))' is longer than a unix socket path may be (107 bytes)"),
        ("dnstap:\n  file: logs/\n", "relay.yaml:2: dnstap.file: expected a file path, such as /var/log/tproxy-relay/dnstap.fstrm"),
        ("dnstap:\n  messages: [client_response]\n", "relay.yaml:2: dnstap: no target: name socket (unix:PATH or tcp:ADDRESS:PORT) or file"),
        ("dnstap:\n  file: t.fstrm\n  messages: [auth_query]\n", "relay.yaml:3: dnstap.messages: 'auth_query' is not a message type the relay emits (client_query, client_response, forwarder_query, forwarder_response)"),
        ("dnstap:\n  file: t.fstrm\n  messages: []\n", "relay.yaml:3: dnstap.messages: name at least one message type (or leave the dnstap section out)"),
        ("dnstap:\n  file: t.fstrm\n  queue: 10\n", "relay.yaml:3: dnstap.queue: 10 is out of range (64...1048576)"),
        ("dnstap:\n  file: t.fstrm\n  identity: \"a\\tb\"\n", "relay.yaml:3: dnstap.identity: expected up to 255 bytes of printable text"),
        ("dnstap:\n  file: t.fstrm\n  format: json\n", "relay.yaml:3: dnstap.format: unknown key (expected one of socket, tcp, file, identity, version, messages, queue)"),
        ("metrics:\n  port: 9153\n", "relay.yaml:2: metrics.port: unknown key (expected one of listen)"),
        ("workers: lots\n", "relay.yaml:1: workers: expected a whole number, got 'lots'"),
        ("upstream:\n  mode: nearest\n", "relay.yaml:2: upstream.mode: expected original or servers"),
        ("upstream:\n  mode: servers\n", "relay.yaml:2: upstream.servers: mode is servers but no servers are listed"),
        ("upstream:\n  servers: [\"10.53.2.53:0\"]\n", "relay.yaml:2: upstream.servers: '10.53.2.53:0' is not an address (10.53.2.53, 10.53.2.53:53, [fd53:2::53]:53)"),
        ("upstream:\n  servers: 10.53.2.53\n", "relay.yaml:2: upstream.servers: expected a list of addresses"),
        ("upstream:\n  timeout: soon\n", "relay.yaml:2: upstream.timeout: expected a duration such as 2s or 500ms, got 'soon'"),
        ("upstream:\n  timeout: 5ms\n", "relay.yaml:2: upstream.timeout: 5ms is out of range (10ms...60s)"),
        ("tcp:\n  idle_timeout: 0s\n", "relay.yaml:2: tcp.idle_timeout: 0s is out of range (100ms...3600s)"),
        ("tcp:\n  max_message_size: 100\n", "relay.yaml:2: tcp.max_message_size: 100 is out of range (512...65535)"),
        ("tcp:\n  max_pending_output: 10\n", "relay.yaml:2: tcp.max_pending_output: 10 is out of range (65537...67108864)"),
        ("tcp:\n  backlog: 5\n", "relay.yaml:2: tcp.backlog: unknown key (expected one of idle_timeout, max_lifetime, max_connections, max_connections_per_client, max_queries_per_connection, max_message_size, max_pending_output)"),
        ("filters:\n  block_with: maybe\n", "relay.yaml:2: filters.block_with: expected nxdomain, null-ip, refused or an IP address, got 'maybe'"),
        ("filters:\n  lists: ads.txt\n", "relay.yaml:2: filters.lists: expected a list of files and URLs, such as [rules/ads.txt]"),
        ("filters:\n  clients: 10.53.1.0/24\n", "relay.yaml:2: filters.clients: expected a list of {match: [CIDR, ...], lists: [file, ...]}"),
        ("filters:\n  clients:\n    - match: [10.53.1.0/99]\n      lists: []\n", "relay.yaml:3: filters.clients.match: '10.53.1.0/99' is not an address, a CIDR such as 10.53.1.0/24 or a client name such as kids-ipad"),
        ("filters:\n  clients:\n    - lists: []\n", "relay.yaml:3: filters.clients.match: each entry needs match: with at least one address, CIDR or client name"),
        ("filters:\n  clients:\n    - match: 10.53.1.7\n", "relay.yaml:3: filters.clients.lists: each entry needs lists: (an empty list means no filtering)"),
        ("filters:\n  clients:\n    - match: 10.53.1.7\n      lists: []\n      colour: red\n", "relay.yaml:5: filters.clients.colour: unknown key (expected one of match, lists)"),
        ("filters:\n  lists: [a.txt]\n  clients:\n    - match: 10.53.1.7\n      lists: [b.txt]\n", "relay.yaml:4: filters.clients.lists: 'b.txt' is not one of filters.lists (name it there first)"),
        ("filters:\n  watch: sometimes\n", "relay.yaml:2: filters.watch: expected true or false"),
        ("colour: red\n", "relay.yaml:1: colour: unknown key (expected one of intercept, listen, workers, upstream, tcp, filters, cache, zones, querylog, quic, limits, metrics, web, dnstap, bypass, clients)"),
        ("quic:\n  sniff: sometimes\n", "relay.yaml:2: quic.sniff: expected true or false"),
        ("quic:\n  idle_timeout: forever\n", "relay.yaml:2: quic.idle_timeout: expected a duration such as 2s or 500ms, got 'forever'"),
        ("quic:\n  idle_timeout: 10ms\n", "relay.yaml:2: quic.idle_timeout: 10ms is out of range (100ms...3600s)"),
        ("quic:\n  hold_datagrams: 0\n", "relay.yaml:2: quic.hold_datagrams: 0 is out of range (1...16)"),
        ("quic:\n  decrypt: all\n", "relay.yaml:2: quic.decrypt: unknown key (expected one of sniff, block, idle_timeout, hold_time, hold_datagrams)"),
        ("limits:\n  max_quic_flows: -1\n", "relay.yaml:2: limits.max_quic_flows: -1 is out of range (1...1000000)"),
        ("limits:\n  max_flows: 5\n", "relay.yaml:2: limits.max_flows: unknown key (expected one of max_quic_flows, client_qps, client_burst, client_prefix_v4, client_prefix_v6, exempt, action)"),
        ("zones: \"\"\n", "relay.yaml:1: zones: expected a directory of zone files, such as zones/"),
        ("zones: [a, b]\n", "relay.yaml:1: zones: expected a single value"),
        ("cache:\n  entries: -1\n", "relay.yaml:2: cache.entries: -1 is out of range (0...10000000)"),
        ("cache:\n  max_ttl: 0\n", "relay.yaml:2: cache.max_ttl: 0 is out of range (1s...604800s)"),
        ("cache:\n  min_ttl: 1.5s\n", "relay.yaml:2: cache.min_ttl: expected whole seconds such as 300, 5m, 1h or 1d, got '1.5s'"),
        ("cache:\n  negative_ttl: soon\n", "relay.yaml:2: cache.negative_ttl: expected whole seconds such as 300, 5m, 1h or 1d, got 'soon'"),
        ("cache:\n  prefetch: often\n", "relay.yaml:2: cache.prefetch: expected true or false"),
        ("cache:\n  size: 5\n", "relay.yaml:2: cache.size: unknown key (expected one of entries, min_ttl, max_ttl, negative_ttl, serve_stale, prefetch)"),
        ("cache:\n  min_ttl: 2h\n  max_ttl: 1h\n", "relay.yaml:2: cache.min_ttl: must not exceed cache.max_ttl"),
        ("querylog:\n  path: /var/log/\n", "relay.yaml:2: querylog.path: expected a file path, such as /var/log/tproxy-relay/queries.jsonl"),
        ("querylog:\n  rotate_size: huge\n", "relay.yaml:2: querylog.rotate_size: expected a size such as 64M, 512k or 1048576, got 'huge'"),
        ("querylog:\n  rotate_size: 1k\n", "relay.yaml:2: querylog.rotate_size: 1k is out of range (4096 bytes...1024G)"),
        ("querylog:\n  keep: -1\n", "relay.yaml:2: querylog.keep: -1 is out of range (0...1000)"),
        ("querylog:\n  anonymize: partly\n", "relay.yaml:2: querylog.anonymize: expected true or false"),
        ("querylog:\n  format: csv\n", "relay.yaml:2: querylog.format: unknown key (expected one of path, enabled, rotate_size, keep, anonymize)"),
        ("upstream:\n  client_identity: spoof\n",
         "relay.yaml:2: upstream.client_identity: expected none, source (the upstream sees the client's address) or subnet (EDNS Client Subnet), got 'spoof'"),
        ("upstream:\n  subnet_prefix_v4: 33\n", "relay.yaml:2: upstream.subnet_prefix_v4: 33 is out of range (0...32)"),
        ("upstream:\n  subnet_prefix_v6: -1\n", "relay.yaml:2: upstream.subnet_prefix_v6: -1 is out of range (0...128)"),
        ("upstream:\n  keep_client_subnet: maybe\n", "relay.yaml:2: upstream.keep_client_subnet: expected true or false"),
        ("upstream:\n  source_sockets: 4\n", "relay.yaml:2: upstream.source_sockets: 4 is out of range (16...65536)"),
        ("upstream:\n  servers:\n    - address: 10.53.2.53\n      client_identity: own\n",
         "relay.yaml:4: upstream.servers.client_identity: expected none, source (the upstream sees the client's address) or subnet (EDNS Client Subnet), got 'own'"),
        ("upstream:\n  servers:\n    - client_identity: source\n", "relay.yaml:3: upstream.servers: an entry written as a mapping needs address:"),
        ("upstream:\n  servers:\n    - {address: 10.53.2.53, weight: 2}\n",
         "relay.yaml:3: upstream.servers.weight: unknown key (expected one of address, client_identity)"),
        ("upstream:\n  servers:\n    - {address: here}\n",
         "relay.yaml:3: upstream.servers.address: 'here' is not an address (10.53.2.53, 10.53.2.53:53, [fd53:2::53]:53)"),
        ("intercept:\n  identity_mark: 0x53\nupstream:\n  client_identity: source\n",
         "relay.yaml:2: intercept.identity_mark: must differ from intercept.mark, bypass_mark and local_mark"),
        ("intercept:\n  bypass_mark: 0x56\nupstream:\n  client_identity: source\n",
         "relay.yaml:1: intercept.identity_mark: must differ from intercept.mark, bypass_mark and local_mark"),
        ("- just\n- a list\n", "relay.yaml:1: the file must be a mapping of sections"),
        ("intercept: [lan0\n", "relay.yaml:2: YAML syntax error: did not find expected ',' or ']'"),
        ("intercept:\n\tinterfaces: [lan0]\n", "relay.yaml:2: YAML syntax error: found character that cannot start any token"),
    ])
    func errorsNameFileLineAndKey(text: String, expected: String) {
        #expect(throws: ConfigurationError.self) { try parse(text) }
        do {
            _ = try parse(text)
        } catch {
            #expect(error.description == expected)
        }
    }

    @Test func queryLogKeysAreRead() throws {
        let config = try ConfigurationParser(file: "/etc/relay/relay.yaml").parse("querylog:\n  path: logs/q.jsonl\n  rotate_size: 2M\n  keep: 3\n  anonymize: true\n")
        #expect(config.querylog.path == "/etc/relay/logs/q.jsonl")
        #expect(config.querylog.rotateSize == 2 << 20 && config.querylog.keep == 3 && config.querylog.anonymize && config.querylog.isOn)
        #expect(try parse("querylog:\n  path: q.jsonl\n  enabled: false\n").querylog.isOn == false)
        #expect(try parse("").querylog.isOn == false)
    }

    @Test func clientIdentityKeysAreRead() throws {
        let config = try parse("""
            upstream:
              mode: servers
              servers: ["10.53.2.53", {address: "[fd53:2::53]:5353", client_identity: subnet}]
              client_identity: source
              subnet_prefix_v4: 20
              subnet_prefix_v6: 48
              keep_client_subnet: true
              source_sockets: 256
            """)
        let upstream = config.upstream
        #expect(upstream.servers.map(\.description) == ["10.53.2.53:53", "[fd53:2::53]:5353"])
        #expect(upstream.serverIdentities == [nil, .subnet])
        #expect(upstream.identity(for: upstream.servers[0]) == .source && upstream.identity(for: upstream.servers[1]) == .subnet)
        #expect(upstream.identity(for: Endpoint(parsing: "10.53.9.9", defaultPort: 53)!) == .source, "a server not listed: the global identity")
        #expect(upstream.subnetPrefixV4 == 20 && upstream.subnetPrefixV6 == 48 && upstream.keepClientSubnet && upstream.sourceSockets == 256)
        #expect(upstream.usesSourceIdentity)
        let defaults = try parse("")
        #expect(defaults.upstream.clientIdentity == .none && !defaults.upstream.usesSourceIdentity)
        #expect(defaults.upstream.subnetPrefixV4 == 24 && defaults.upstream.subnetPrefixV6 == 56 && defaults.intercept.identityMark == 0x56)
        // Only one server sends from clients' addresses: the table still takes their answers in.
        #expect(try parse("upstream:\n  servers: [{address: 10.53.2.53, client_identity: source}]\n").upstream.usesSourceIdentity)
    }

    @Test func cacheKeysAreRead() throws {
        let config = try parse("cache:\n  entries: 500\n  min_ttl: 30\n  max_ttl: 1h\n  negative_ttl: 5m\n  serve_stale: 2d\n  prefetch: false\n")
        var cache = Configuration.Cache()
        (cache.entries, cache.minTTL, cache.maxTTL, cache.negativeTTL, cache.serveStale, cache.prefetch) = (500, 30, 3600, 300, 172_800, false)
        #expect(config.cache == cache)
    }

    @Test func clientPoliciesBecomeListMasks() throws {
        let config = try parse("""
            filters:
              lists: [ads.txt, adult.txt]
              watch: false
              clients:
                - match: [10.53.1.0/24, "fd53:1::/64"]
                  lists: [ads.txt]
                - match: 10.53.1.7
                  lists: []
            """)
        #expect(config.filters.watch == false)
        let policy = config.filters.clientPolicy()
        #expect(policy.lists(for: IPAddress("10.53.1.9")!) == ListMask(lists: [0]))
        #expect(policy.lists(for: IPAddress("fd53:1::9")!) == ListMask(lists: [0]))
        #expect(policy.lists(for: IPAddress("10.53.1.7")!) == ListMask(lists: []))
        #expect(policy.lists(for: IPAddress("10.53.2.7")!) == .all)
    }

    @Test func missingFileIsReported() {
        do {
            _ = try ConfigurationParser.load(path: "/nonexistent/relay.yaml")
            Issue.record("loaded a missing file")
        } catch {
            #expect(error.description.hasPrefix("/nonexistent/relay.yaml: cannot read the file"))
        }
    }

    @Test(arguments: [("2s", 2000), ("500ms", 500), ("1.5s", 1500), ("3", 3000), ("1m", 60000), ("2h", 7_200_000), ("1d", 86_400_000), ("-1s", nil), ("s", nil), ("2w", nil)] as [(String, Int?)])
    func durations(text: String, ms: Int?) {
        #expect(ConfigurationParser.parseDuration(text) == ms)
    }

    @Test func autoWorkersFollowTheCPUs() {
        var config = Configuration()
        #expect(config.resolvedWorkers(availableCPUs: 3) == 3)
        config.workers = 1
        #expect(config.resolvedWorkers(availableCPUs: 3) == 1)
    }

    @Test func localCaptureKeys() throws {
        let config = try parse("intercept:\n  interfaces: [lan0]\n  local: true\n  local_mark: 0x60\n  local_bypass_users: [root, 107]\n  local_bypass_groups: 65534\n")
        #expect(config.intercept.local && config.intercept.localMark == 0x60)
        #expect(config.intercept.localBypassUsers == [0, 107] && config.intercept.localBypassGroups == [65534])
        #expect(config.warnings.count == 1 && config.warnings[0].contains(":5: intercept.local_bypass_users: root (uid 0) is bypassed"))
        #expect(!Configuration().intercept.local)
    }

    @Test(arguments: [
        ("intercept:\n  local: true\n  local_bypass_users: [no-such-user-x]\n", ":3: intercept.local_bypass_users: 'no-such-user-x' is not a user on this host"),
        ("intercept:\n  local: true\n  local_bypass_groups: [no-such-group-x]\n", ":3: intercept.local_bypass_groups: 'no-such-group-x' is not a group on this host"),
        ("intercept:\n  local: true\n  local_mark: 0x54\n", ":3: intercept.local_mark: must differ from intercept.mark and intercept.bypass_mark"),
        ("intercept:\n  local: maybe\n", ":2: intercept.local: expected true or false"),
        ("intercept:\n  local_mark: 0\n", ":2: intercept.local_mark: must not be 0"),
    ])
    func badLocalCaptureKeys(_ yaml: String, _ expected: String) {
        #expect(throws: ConfigurationError.self) { try parse(yaml) }
        do { _ = try parse(yaml) } catch { #expect("\(error)".contains(expected), "\(error)") }
    }
}
