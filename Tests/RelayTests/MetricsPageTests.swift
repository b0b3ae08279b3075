import QueryLog
import RelayCore
import Testing
@testable import Relay

/// /metrics as text: the exposition format's rules (escaping, histograms, `_total`), sums over
/// workers, and bounded label sets.
@Suite struct MetricsPageTests {
    static func inputs(_ workers: [WorkerSnapshot]) -> MetricsInputs {
        MetricsInputs(workers: workers, tcpConnections: 3, lists: [("/etc/lists/ads \"x\".txt", LoadStatus.Entry(size: 10, succeeded: true, lastSuccess: 1_700_000_000))],
                      zones: [("zones/lan.zone", LoadStatus.Entry(size: 4, succeeded: false, lastSuccess: 0))],
                      queryLog: (written: 7, dropped: 1), interceptionInstalled: true, workersAlive: true, startTime: 1_700_000_000.5)
    }

    static func snapshot(servers: [Endpoint] = [Endpoint(address: IPAddress("10.53.2.53")!, port: 53)]) -> WorkerSnapshot {
        WorkerSnapshot(upstream: UpstreamTally(servers: servers, serversMode: true))
    }

    /// Sample lines of one metric, without HELP/TYPE.
    static func samples(_ text: String, _ name: String) -> [String] {
        text.split(separator: "\n").map(String.init).filter { $0.hasPrefix("tproxy_relay_\(name){") || $0.hasPrefix("tproxy_relay_\(name) ") }
    }

    @Test func countersAreSummedOverWorkersAndNamedFromTheTable() {
        var a = Self.snapshot(), b = Self.snapshot()
        a.counters.received = 5
        b.counters.received = 7
        a.counters.cacheEntries = 2
        b.counters.cacheEntries = 3
        let text = MetricsPage.render(Self.inputs([a, b]))
        #expect(Self.samples(text, "received_total") == ["tproxy_relay_received_total 12"])
        #expect(text.contains("# TYPE tproxy_relay_received_total counter\n"))
        #expect(Self.samples(text, "cache_entries") == ["tproxy_relay_cache_entries 5"])
        #expect(text.contains("# TYPE tproxy_relay_cache_entries gauge\n"))
        // Every field of the table appears once, with HELP and TYPE.
        for field in Counters.fields {
            let name = "tproxy_relay_" + field.name + (field.kind == .counter ? "_total" : "")
            #expect(text.components(separatedBy: "# TYPE \(name) ").count == 2, "\(name)")
            #expect(text.contains("# HELP \(name) "), "\(name)")
        }
        #expect(Self.samples(text, "tcp_connections") == ["tproxy_relay_tcp_connections 3"])
        #expect(Self.samples(text, "querylog_dropped_total") == ["tproxy_relay_querylog_dropped_total 1"])
    }

    @Test func answersAreLabelledByActionTransportAndRcodeOnlyWhenSeen() {
        var a = Self.snapshot()
        a.answers.count(action: .blocked, tcp: false, rcode: 3)
        a.answers.local.observe(nanoseconds: 20_000)
        a.answers.count(action: .blocked, tcp: false, rcode: 3)
        a.answers.local.observe(nanoseconds: 30_000)
        a.answers.count(action: .allowed, tcp: true, rcode: 0)
        a.answers.forwarded.observe(nanoseconds: 3_000_000)
        // The rcode is the header's low four bits: flags in the same byte do not leak in.
        a.answers.count(action: .error, tcp: false, rcode: 0x82)
        a.answers.local.observe(nanoseconds: 1)
        let text = MetricsPage.render(Self.inputs([a]))
        #expect(Self.samples(text, "answers_total").sorted() == [
            "tproxy_relay_answers_total{action=\"allowed\",proto=\"tcp\",rcode=\"NOERROR\"} 1",
            "tproxy_relay_answers_total{action=\"blocked\",proto=\"udp\",rcode=\"NXDOMAIN\"} 2",
            "tproxy_relay_answers_total{action=\"error\",proto=\"udp\",rcode=\"SERVFAIL\"} 1",
        ])
    }

    @Test func histogramsAreCumulativeWithSumAndCount() {
        var a = Self.snapshot(), b = Self.snapshot()
        a.answers.count(action: .blocked, tcp: false, rcode: 3)
        a.answers.local.observe(nanoseconds: 40_000)      // ≤ 50 µs
        b.answers.count(action: .blocked, tcp: false, rcode: 3)
        b.answers.local.observe(nanoseconds: 60_000)      // ≤ 100 µs
        b.answers.count(action: .allowed, tcp: false, rcode: 0)
        b.answers.forwarded.observe(nanoseconds: 7_000_000_000) // > 5 s
        a.answers.local.observe(nanoseconds: 20_000, count: 3)  // a batch of three
        let text = MetricsPage.render(Self.inputs([a, b]))
        let local = Self.samples(text, "answer_duration_seconds_bucket").filter { $0.contains("path=\"local\"") }
        #expect(local.count == LatencyHistogram.bounds.count + 1)
        #expect(local.first == "tproxy_relay_answer_duration_seconds_bucket{path=\"local\",le=\"5e-05\"} 4")
        #expect(local[1] == "tproxy_relay_answer_duration_seconds_bucket{path=\"local\",le=\"0.0001\"} 5")
        #expect(local.last == "tproxy_relay_answer_duration_seconds_bucket{path=\"local\",le=\"+Inf\"} 5")
        let forwarded = Self.samples(text, "answer_duration_seconds_bucket").filter { $0.contains("path=\"forwarded\"") }
        #expect(forwarded[forwarded.count - 2].hasSuffix("le=\"5.0\"} 0"))
        #expect(forwarded.last?.hasSuffix("le=\"+Inf\"} 1") == true)
        #expect(Self.samples(text, "answer_duration_seconds_sum").contains("tproxy_relay_answer_duration_seconds_sum{path=\"local\"} 0.00016"))
        #expect(Self.samples(text, "answer_duration_seconds_count").contains("tproxy_relay_answer_duration_seconds_count{path=\"forwarded\"} 1"))
        #expect(text.contains("# TYPE tproxy_relay_answer_duration_seconds histogram\n"))
    }

    @Test func upstreamSeriesAreTheConfiguredServersPlusTwoAggregates() {
        let servers = [Endpoint(address: IPAddress("10.53.2.53")!, port: 53), Endpoint(address: IPAddress("fd53:2::53")!, port: 5353)]
        var a = Self.snapshot(servers: servers)
        a.upstream.count(.queries, slot: a.upstream.slot(serverIndex: 1))
        a.upstream.count(.timeouts, slot: a.upstream.slot(serverIndex: Int(Int32.max)))
        a.upstream.count(.mismatches, slot: a.upstream.slot(source: Endpoint(address: IPAddress("10.9.9.9")!, port: 53)))
        a.upstream.count(.mismatches, slot: a.upstream.slot(source: servers[0]))
        let text = MetricsPage.render(Self.inputs([a, a]))
        #expect(Self.samples(text, "upstream_server_queries_total") == [
            "tproxy_relay_upstream_server_queries_total{upstream=\"10.53.2.53:53\"} 0",
            "tproxy_relay_upstream_server_queries_total{upstream=\"[fd53:2::53]:5353\"} 2",
            "tproxy_relay_upstream_server_queries_total{upstream=\"addressed\"} 0",
            "tproxy_relay_upstream_server_queries_total{upstream=\"rule\"} 0",
        ])
        #expect(Self.samples(text, "upstream_server_timeouts_total").contains("tproxy_relay_upstream_server_timeouts_total{upstream=\"rule\"} 2"))
        #expect(Self.samples(text, "upstream_server_mismatches_total").contains("tproxy_relay_upstream_server_mismatches_total{upstream=\"addressed\"} 2"))
        #expect(Self.samples(text, "upstream_server_mismatches_total").contains("tproxy_relay_upstream_server_mismatches_total{upstream=\"10.53.2.53:53\"} 2"))
        // In original mode every server a client asked is counted together.
        let original = UpstreamTally(servers: servers, serversMode: false)
        #expect(original.labels == ["addressed", "rule"])
        #expect(original.slot(serverIndex: 0) == original.addressedSlot)
    }

    @Test func labelValuesAndHelpAreEscaped() {
        let text = MetricsPage.render(Self.inputs([Self.snapshot()]))
        #expect(text.contains("tproxy_relay_list_rules{list=\"/etc/lists/ads \\\"x\\\".txt\"} 10"))
        #expect(PrometheusText.escapeLabel("a\\b\nc\"") == "a\\\\b\\nc\\\"")
        #expect(PrometheusText.escapeHelp("a\\b\nc") == "a\\\\b\\nc")
        #expect(text.contains("tproxy_relay_zone_load_success{zone=\"zones/lan.zone\"} 0"))
        #expect(text.contains("tproxy_relay_build_info{version=\"\(BuildInfo.version)\",swift=\"\(BuildInfo.swiftVersion)\"} 1"))
        #expect(text.hasSuffix("\n"))
    }

    @Test func loadStatusKeepsTheLastSuccessWhenAReloadFails() {
        let status = LoadStatus()
        status.listLoaded("a.txt", rules: 5, at: 100)
        status.listFailed("a.txt")
        status.listFailed("b.txt")
        #expect(status.lists.map(\.0) == ["a.txt", "b.txt"])
        #expect(status.lists[0].1 == LoadStatus.Entry(size: 5, succeeded: false, lastSuccess: 100))
        #expect(status.lists[1].1 == LoadStatus.Entry(size: 0, succeeded: false, lastSuccess: 0))
        status.zonesLoaded([("z1", 3), ("z2", 4)], failed: ["z2"], at: 50)
        #expect(status.zones.map(\.1.succeeded) == [true, false])
    }
}
