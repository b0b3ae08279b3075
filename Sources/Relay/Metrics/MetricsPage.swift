import QueryLog
import RelayCore

/// Everything /metrics shows, gathered by the service at scrape time.
struct MetricsInputs {
    var workers: [WorkerSnapshot]
    /// What the kernel counted (bypass rules), added to the workers' sums.
    var kernel = Counters()
    var tcpConnections: Int
    var lists: [(String, LoadStatus.Entry)]
    var zones: [(String, LoadStatus.Entry)]
    var downloads: [(String, LoadStatus.Downloads)] = []
    var clientNames: ClientNameService.Metrics? = nil
    /// Entries the query log wrote and dropped; nil when the log is off.
    var queryLog: (written: Int, dropped: Int)?
    /// dnstap frames sent and dropped, and whether the output is open; nil when dnstap is off.
    var dnstap: (sent: Int, dropped: Int, connected: Bool)? = nil
    var interceptionInstalled: Bool
    var workersAlive: Bool
    var startTime: Double
}

/// Renders /metrics: the counter table, answers by action/transport/rcode, latency histograms,
/// per-upstream series, gauges, and build info. Every label set is bounded by the code or the
/// configuration (no domain, client or rule ever becomes a label).
enum MetricsPage {
    static let rcodeNames = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
                             "NXRRSET", "NOTAUTH", "NOTZONE", "DSOTYPENI", "12", "13", "14", "15"]
    static let actionNames = ["allowed", "blocked", "rewritten", "local", "cached", "dropped", "error"]

    static func render(_ inputs: MetricsInputs) -> String {
        var out = PrometheusText()
        out.family("build_info", .gauge, "The relay's version and the Swift compiler that built it; always 1.")
        out.sample("build_info", ["version": BuildInfo.version, "swift": BuildInfo.swiftVersion], 1)
        out.family("start_time_seconds", .gauge, "When the relay started, Unix seconds.")
        out.sample("start_time_seconds", [], inputs.startTime)
        out.single("workers", .gauge, "Worker threads.", inputs.workers.count)
        out.single("workers_alive", .gauge, "1 when every worker's loop turned within the last second.", inputs.workersAlive ? 1 : 0)
        out.single("interception_installed", .gauge, "1 while the nft table and policy routes are installed.", inputs.interceptionInstalled ? 1 : 0)

        // Sums over workers; a counter's zero series still shows (the table is fixed).
        let counters = inputs.workers.reduce(inputs.kernel) { $0 + $1.counters }
        for field in Counters.fields {
            let name = field.kind == .counter ? field.name + "_total" : field.name
            out.single(name, field.kind == .counter ? .counter : .gauge, field.help, counters[keyPath: field.path])
        }

        let answers = inputs.workers.dropFirst().reduce(inputs.workers.first?.answers ?? AnswerTally()) { $0 + $1.answers }
        out.family("answers_total", .counter, "Answers sent to clients over UDP and TCP, by action (as the query log names it), transport and response code.")
        for action in 0..<AnswerTally.actionCount {
            for tcp in [false, true] {
                for rcode in 0..<AnswerTally.rcodeCount {
                    let value = answers.answers[AnswerTally.index(action: action, tcp: tcp, rcode: rcode)]
                    guard value > 0 else { continue }
                    out.sample("answers_total", [("action", actionNames[action]), ("proto", tcp ? "tcp" : "udp"), ("rcode", rcodeNames[rcode])], value)
                }
            }
        }
        out.family("answer_duration_seconds", .histogram,
                   "Time from a query's arrival to its answer: answers made here (zones, rules, cache, errors) and answers from upstream.")
        histogram(&out, answers.local, path: "local")
        histogram(&out, answers.forwarded, path: "forwarded")

        upstreams(&out, inputs.workers)

        out.single("in_flight_queries", .gauge, "Queries waiting for an upstream answer.", inputs.workers.reduce(0) { $0 + $1.inFlight })
        out.single("tcp_connections", .gauge, "Client TCP connections open.", inputs.tcpConnections)

        loads(&out, inputs.lists, kind: "list", size: "rules", what: "Rules in service from each list (filters.lists).", previous: "copy")
        loads(&out, inputs.zones, kind: "zone", size: "records", what: "Records in service from each zone file.", previous: "version")
        if let names = inputs.clientNames {
            out.family("client_names", .gauge, "Client addresses named by each file source (hosts, leases); names are never labels.")
            for (source, count) in names.named { out.sample("client_names", [("source", source)], count) }
            out.family("client_name_lookups_total", .counter,
                       "Reverse (PTR) lookups of client names by result: sent, named, unnamed (NXDOMAIN or no PTR), failed (timeout, SERVFAIL, unreadable).")
            for (result, count) in [("sent", names.sent), ("named", names.named_), ("unnamed", names.unnamed), ("failed", names.failed)] {
                out.sample("client_name_lookups_total", [("result", result)], count)
            }
            out.single("client_name_lookups_dropped_total", .counter,
                       "Reverse lookups not asked because the queue was full (a flood of new clients); asked again later.", names.dropped)
        }
        if !inputs.downloads.isEmpty {
            out.family("list_downloads_total", .counter,
                       "Downloads of each URL list by result: updated, unchanged (304 or the same bytes), failed (the copy in service stays).")
            for (url, d) in inputs.downloads {
                for (result, count) in [("updated", d.updated), ("unchanged", d.unchanged), ("failed", d.failed)] {
                    out.sample("list_downloads_total", [("list", url), ("result", result)], count)
                }
            }
            out.family("list_download_last_success_timestamp_seconds", .gauge, "When a download of the URL list last worked, Unix seconds (0: not since start).")
            for (url, d) in inputs.downloads { out.sample("list_download_last_success_timestamp_seconds", [("list", url)], d.lastSuccess) }
        }

        if let log = inputs.queryLog {
            out.single("querylog_written_total", .counter, "Query log entries written.", log.written)
            out.single("querylog_dropped_total", .counter, "Query log entries dropped (a full ring or a failing disk); DNS is not affected.", log.dropped)
        }
        if let tap = inputs.dnstap {
            out.single("dnstap_frames_sent_total", .counter, "dnstap frames written to the collector or file.", tap.sent)
            out.single("dnstap_frames_dropped_total", .counter,
                       "dnstap frames dropped (a full ring, or the collector absent, slow or gone); DNS is not affected.", tap.dropped)
            out.single("dnstap_connected", .gauge, "1 while the dnstap output is open (the collector accepted the stream, or the file is open).",
                       tap.connected ? 1 : 0)
        }
        return out.text
    }

    /// Three families per loaded file (`<kind>_<size>`, `<kind>_load_success`,
    /// `<kind>_last_success_timestamp_seconds`), one series per file: bounded by the configuration.
    private static func loads(_ out: inout PrometheusText, _ entries: [(String, LoadStatus.Entry)], kind: String, size: String,
                              what: String, previous: String) {
        out.family("\(kind)_\(size)", .gauge, what)
        for (file, entry) in entries { out.sample("\(kind)_\(size)", [(kind, file)], entry.size) }
        out.family("\(kind)_load_success", .gauge, "1 when the last load of the \(kind) worked; 0 when it failed and the previous \(previous) stays in service.")
        for (file, entry) in entries { out.sample("\(kind)_load_success", [(kind, file)], entry.succeeded ? 1 : 0) }
        out.family("\(kind)_last_success_timestamp_seconds", .gauge, "When the \(kind) was last loaded successfully, Unix seconds.")
        for (file, entry) in entries { out.sample("\(kind)_last_success_timestamp_seconds", [(kind, file)], entry.lastSuccess) }
    }

    private static func histogram(_ out: inout PrometheusText, _ histogram: LatencyHistogram, path: String) {
        var cumulative = 0
        for (i, bound) in LatencyHistogram.bounds.enumerated() {
            cumulative += histogram.buckets[i]
            out.sample("answer_duration_seconds_bucket", [("path", path), ("le", PrometheusText.format(Double(bound) / 1e9))], cumulative)
        }
        out.sample("answer_duration_seconds_bucket", [("path", path), ("le", "+Inf")], histogram.count)
        out.sample("answer_duration_seconds_sum", [("path", path)], Double(histogram.sumNanoseconds) / 1e9)
        out.sample("answer_duration_seconds_count", [("path", path)], histogram.count)
    }

    private static func upstreams(_ out: inout PrometheusText, _ workers: [WorkerSnapshot]) {
        guard let first = workers.first?.upstream else { return }
        let tally = workers.dropFirst().reduce(first) { $0 + $1.upstream }
        let families: [(UpstreamTally.Kind, String, String)] = [
            (.queries, "upstream_server_queries_total", "Queries sent to each upstream, retries included ('addressed': the servers clients asked, in original mode; 'rule': server=/d/ targets)."),
            (.answers, "upstream_server_answers_total", "Answers accepted from each upstream."),
            (.timeouts, "upstream_server_timeouts_total", "Tries to each upstream that timed out."),
            (.mismatches, "upstream_server_mismatches_total", "Datagrams from each upstream that matched no query in flight."),
        ]
        for (kind, name, help) in families {
            out.family(name, .counter, help)
            for slot in tally.labels.indices { out.sample(name, [("upstream", tally.labels[slot])], tally.value(kind, slot: slot)) }
        }
    }
}
