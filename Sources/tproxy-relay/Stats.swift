import ArgumentParser
import Foundation
import Configuration
import QueryLog

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarise the query log (current and rotated files): totals, top names, clients, the servers clients addressed, latency.")

    @OptionGroup var options: ConfigOptions

    @Option(name: .customLong("file"), help: "The log file (default: querylog.path from the configuration).")
    var file: String?

    @Option(help: "Only entries this recent: 30m, 1h, 1d.") var since: String?
    @Option(help: "How many names, clients and servers to list.") var top: Int = 10
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        if let since, ConfigurationParser.parseDuration(since) == nil { throw ValidationError("--since: expected a duration such as 30m, 1h or 1d") }
        guard top > 0 else { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
        let path = try logPath(file: file, config: options.config)
        try requireReadableLog(path)
        var filter = QueryLogFilter()
        if let since, let ms = ConfigurationParser.parseDuration(since) { filter.since = Date().timeIntervalSince1970 - Double(ms) / 1000 }
        var report = QueryLogStats()
        for file in QueryLogFiles.files(path) {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") {
                if let entry = QueryLogEntry(line: String(line)), filter.matches(entry) { report.add(entry) }
            }
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: report.json(top: top), options: [.sortedKeys, .prettyPrinted])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(report.text(top: top))
        }
    }
}
