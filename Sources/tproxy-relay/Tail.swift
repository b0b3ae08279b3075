import ArgumentParser
import Foundation
import Relay

struct Tail: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow the query log live, across rotations (like tail -F), with filters.",
        discussion: "Reads querylog.path from the configuration unless --file is given. Colours go off when the output is not a terminal.")

    @OptionGroup var options: ConfigOptions

    @Option(name: .customLong("file"), help: "The log file (default: querylog.path from the configuration).")
    var file: String?

    @Option(name: .short, help: "Start with the last N entries (across rotated files).")
    var n: Int = 10

    @Flag(name: .customLong("no-follow"), help: "Print the last entries and exit.")
    var noFollow = false

    @Option(help: "Only this client (an address or a CIDR).") var client: String?
    @Option(help: "Only this domain and names below it.") var domain: String?
    @Option(help: "Only this action (allowed, blocked, rewritten, local, cached, dropped, error).") var action: String?
    @Option(help: "Only this protocol (udp, tcp, quic).") var proto: String?
    @Option(name: .customLong("type"), help: "Only this query type (A, AAAA, ...).") var type: String?
    @Option(help: "Only this response code (NOERROR, NXDOMAIN, ...).") var rcode: String?
    @Option(help: "Only lines matching this regular expression.") var grep: String?

    @Flag(help: "Print the raw JSON lines (for jq).") var json = false
    @Flag(name: .customLong("no-color"), help: "No colours.") var noColor = false

    func validate() throws {
        guard n >= 0 else { throw ValidationError("-n must be 0 or more") }
        if let grep, (try? NSRegularExpression(pattern: grep)) == nil { throw ValidationError("--grep: '\(grep)' is not a valid regular expression") }
        if let action, !["allowed", "blocked", "rewritten", "local", "cached", "dropped", "error"].contains(action.lowercased()) {
            throw ValidationError("--action: '\(action)' is not one of allowed, blocked, rewritten, local, cached, dropped, error")
        }
    }

    func run() throws {
        let path = try logPath(file: file, config: options.config)
        var filter = QueryLogFilter()
        filter.client = client; filter.domain = domain; filter.action = action; filter.proto = proto
        filter.type = type; filter.rcode = rcode; filter.grep = grep
        let printer = EntryPrinter(json: json, color: !noColor && isatty(1) == 1)

        // The last N matching entries: rotated files first, then the live file, which the
        // follower then goes on reading from where this left off.
        var last: [QueryLogEntry] = []
        func keep(_ line: String) {
            guard n > 0, let entry = QueryLogEntry(line: line), filter.matches(entry) else { return }
            last.append(entry)
            if last.count > n { last.removeFirst(last.count - n) }
        }
        for rotated in QueryLogFiles.files(path).dropLast() where FileManager.default.fileExists(atPath: path) {
            guard let text = try? String(contentsOfFile: rotated, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") { keep(String(line)) }
        }
        let follower = QueryLogFollower(path: path)
        for line in follower.start() { keep(line) }
        for entry in last { printer.print(entry) }
        fflush(stdout)
        guard !noFollow else { return }
        while true {
            for line in follower.poll() {
                if let entry = QueryLogEntry(line: line), filter.matches(entry) { printer.print(entry) }
            }
            fflush(stdout)
            usleep(100_000)
        }
    }
}

/// The query log's path: `--file`, else `querylog.path` from the configuration.
func logPath(file: String?, config: String) throws -> String {
    if let file { return file }
    do {
        let configuration = try ConfigurationParser.load(path: config)
        guard let path = configuration.querylog.path else {
            print("error: \(config) has no querylog.path (or pass --file)")
            throw ExitCode(1)
        }
        return path
    } catch let error as ConfigurationError {
        print("error: \(error)")
        throw ExitCode(1)
    }
}

/// One readable, aligned line per entry; blocked in red, local and rewritten in cyan, cached in
/// green, errors in yellow.
struct EntryPrinter {
    var json: Bool
    var color: Bool

    func print(_ entry: QueryLogEntry) {
        if json {
            Swift.print(entry.line)
            return
        }
        let clock = entry.time.split(separator: "T").last.map { String($0.dropLast().prefix(12)) } ?? entry.time
        let client = QueryLogEntry.address(of: entry.client)
        let server = QueryLogEntry.address(of: entry.server)
        let name = entry.qname ?? entry.sni ?? "-"
        var text = "\(clock)  \(pad(entry.proto, 4)) \(pad(client, 15)) → \(pad(server, 15)) \(pad(entry.qtype ?? "-", 5)) \(pad(name, 36)) \(pad(entry.action, 9)) \(pad(entry.rcode, 8))"
        if let rule = entry.rule {
            text += "  \(rule.text ?? "") (\((rule.list as NSString).lastPathComponent):\(rule.line))"
        } else if !entry.answers.isEmpty {
            text += "  \(entry.answers.joined(separator: " "))"
        }
        text += "  \(entry.durationMicros)µs"
        guard color else {
            Swift.print(text)
            return
        }
        let code: String
        switch entry.action {
        case "blocked": code = "31"
        case "local", "rewritten": code = "36"
        case "cached": code = "32"
        case "error", "dropped": code = "33"
        default: code = "0"
        }
        Swift.print("\u{1b}[\(code)m\(text)\u{1b}[0m")
    }

    private func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }
}
