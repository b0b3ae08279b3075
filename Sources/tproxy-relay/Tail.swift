import ArgumentParser
import Foundation
import Configuration
import QueryLog

struct Tail: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the last entries of the query log, or follow it live across rotations (-f), with filters.",
        discussion: """
            Like tail(1): without -f it prints the last N entries (10) and exits; -f (or -F) then goes on \
            following the log across rotations, as tail -F does. Reads querylog.path from the \
            configuration unless --file is given. Colours go off when the output is not a terminal.
            """)

    @OptionGroup var options: ConfigOptions

    @Option(name: .customLong("file"), help: "The log file (default: querylog.path from the configuration).")
    var file: String?

    @Option(name: .short, help: "The last N entries (across rotated files).")
    var n: Int = 10

    @Flag(name: [.customShort("f"), .customLong("follow")], help: "Then follow the log as it grows, across rotations.")
    var follow = false

    @Flag(name: .customShort("F"), help: "The same as -f (the log is always followed by name, across rotations).")
    var followByName = false

    /// Kept for scripts written when following was the default; printing and exiting is now.
    @Flag(name: .customLong("no-follow"), help: .hidden)
    var noFollow = false

    @Option(help: "Only this client (an address, a CIDR, or a name from clients.names).") var client: String?
    @Option(help: "Only this domain and names below it.") var domain: String?
    @Option(help: "Only this action (allowed, blocked, rewritten, local, cached, dropped, error).") var action: String?
    @Option(help: "Only this protocol (udp, tcp, quic).") var proto: String?
    @Option(name: .customLong("type"), help: "Only this query type (A, AAAA, ...).") var type: String?
    @Option(help: "Only this response code (NOERROR, NXDOMAIN, ...).") var rcode: String?
    @Option(help: "Only lines matching this regular expression.") var grep: String?
    @Option(help: "Only queries this host sent itself (local, with intercept.local) or only the others (lan).") var origin: String?

    @Flag(help: "Print the raw JSON lines (for jq).") var json = false
    @Flag(name: .customLong("no-color"), help: "No colours.") var noColor = false

    func validate() throws {
        guard n >= 0 else { throw ValidationError("-n must be 0 or more") }
        if noFollow && (follow || followByName) { throw ValidationError("--no-follow and -f contradict each other") }
        if let grep, (try? NSRegularExpression(pattern: grep)) == nil { throw ValidationError("--grep: '\(grep)' is not a valid regular expression") }
        if let action, !["allowed", "blocked", "rewritten", "local", "cached", "dropped", "error"].contains(action.lowercased()) {
            throw ValidationError("--action: '\(action)' is not one of allowed, blocked, rewritten, local, cached, dropped, error")
        }
    }

    func run() throws {
        let path = try logPath(file: file, config: options.config)
        let following = follow || followByName
        // A log that is not there yet is worth waiting for only when following (as tail -F).
        if !following || !FileManager.default.fileExists(atPath: path) {
            try requireReadableLog(path, waiting: following)
        }
        var filter = QueryLogFilter()
        filter.client = client; filter.domain = domain; filter.action = action; filter.proto = proto
        filter.type = type; filter.rcode = rcode; filter.grep = grep
        if let origin {
            guard QueryLogFilter.origins.contains(origin.lowercased()) else {
                print("error: --origin takes local or lan, not '\(origin)'")
                throw ExitCode(1)
            }
            filter.origin = origin
        }
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
        guard following else { return }
        while true {
            for line in follower.poll() {
                if let entry = QueryLogEntry(line: line), filter.matches(entry) { printer.print(entry) }
            }
            fflush(stdout)
            usleep(100_000)
        }
    }
}

/// Fails with one line on stderr when the log at `path` cannot be read: missing (and no rotated
/// file either), a directory, or unreadable. With `waiting` a missing log is only announced.
func requireReadableLog(_ path: String, waiting: Bool = false) throws {
    var isDirectory: ObjCBool = false
    let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
    if !exists {
        if QueryLogFiles.files(path).contains(where: { $0 != path && FileManager.default.fileExists(atPath: $0) }) { return }
        if waiting {
            FileHandle.standardError.write(Data("tproxy-relay: \(path) does not exist yet; waiting for it\n".utf8))
            return
        }
        FileHandle.standardError.write(Data("error: \(path): no such query log\n".utf8))
        throw ExitCode(1)
    }
    if isDirectory.boolValue {
        FileHandle.standardError.write(Data("error: \(path) is a directory, not a query log\n".utf8))
        throw ExitCode(1)
    }
    guard FileManager.default.isReadableFile(atPath: path) else {
        FileHandle.standardError.write(Data("error: \(path): permission denied\n".utf8))
        throw ExitCode(1)
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
        var text = "\(clock)  \(pad(entry.proto, 4)) \(pad(client, 15)) \(pad(entry.clientName.map { String($0.prefix(16)) } ?? "-", 16)) → \(pad(server, 15)) \(pad(entry.qtype ?? "-", 5)) \(pad(name, 36)) \(pad(entry.action, 9)) \(pad(entry.rcode, 8))"
        if entry.isFlowEnd {
            // A QUIC flow's end: what it carried and for how long (its decision came earlier).
            text += "  ended: \(entry.bytesUp) B up, \(entry.bytesDown) B down"
        } else if let rule = entry.rule {
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
