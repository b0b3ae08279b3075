import ArgumentParser
import Configuration
import Foundation
import ClientNames
import Interception
import ListDownload
import Relay
import RelayCore
import Rules
import Zones

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate the configuration and rule lists; errors name the file, line and key.",
        discussion: "Exits 0 when the configuration is valid (warnings are printed), 1 otherwise; with --strict, also 1 when a list has a rejected line.")

    @OptionGroup var options: ConfigOptions

    @Flag(help: "Fail (exit 1) when any list line is rejected.")
    var strict = false

    func run() throws {
        let configuration: Configuration
        do {
            configuration = try ConfigurationParser.load(path: options.config)
        } catch {
            print("error: \(error)")
            throw ExitCode(1)
        }
        for warning in configuration.warnings { print("warning: \(warning)") }
        var rejected = 0
        if !configuration.filters.lists.isEmpty {
            do {
                let rules = try configuration.filters.loadRuleSet()
                for report in rules.reports {
                    print("\(report.list): \(report.rules) rules, \(report.exceptions) exceptions, \(report.ignored) ignored, \(report.rejected.count) rejected, \(report.disabled) disabled by $badfilter")
                    for (why, count) in report.ignoredReasons.sorted(by: { $0.key < $1.key }) { print("  ignored \(count): \(why)") }
                    for bad in report.rejected { print("  \(report.list):\(bad.line): rejected: \(bad.reason): \(bad.text)") }
                    rejected += report.rejected.count
                }
            } catch {
                print("error: rule list \(error)")
                throw ExitCode(1)
            }
        }
        for subscription in configuration.filters.subscriptions {
            print(Self.describe(subscription, in: configuration.filters))
        }
        rejected += Self.checkNames(configuration.clients.names)
        if let directory = configuration.zones {
            let outcome = ZoneLoader.load(directory: directory)
            for zone in outcome.zones.zones { print("zone \(zone.origin): \(zone.recordCount) records from \(zone.file)") }
            for error in outcome.errors { print("error: zone \(error)") }
            if !outcome.errors.isEmpty { throw ExitCode(1) }
        }
        for path in configuration.bypass.blockAddresses {
            do {
                let list = try AddressList.load(path)
                print("\(path): \(list.prefixes.count) blocked addresses and prefixes, \(list.rejected.count) rejected (bypass.block_addresses)")
                for bad in list.rejected { print("  \(path):\(bad.line): rejected: not an address or CIDR: \(bad.text)") }
                rejected += list.rejected.count
            } catch {
                print("error: bypass.block_addresses \(error)")
                throw ExitCode(1)
            }
        }
        for note in SourceIdentityCheck.notes(configuration, route: RouteLookup.route(to:)) {
            print("\(note.isWarning ? "warning" : "note"): \(note.text)")
        }
        if configuration.intercept.interfaces.isEmpty {
            // The packaged default: valid, but `run` refuses until an interface is named.
            print("note: intercept.interfaces is empty: nothing is captured, and `run` refuses to start until it names your LAN interfaces, such as [lan0]")
        }
        if let target = configuration.dnstap.target {
            let messages = Configuration.Dnstap.Message.allCases.filter { configuration.dnstap.messages.contains($0) }.map(\.rawValue)
            print("dnstap: \(messages.joined(separator: ", ")) to \(target)")
        }
        if !configuration.metrics.listen.isEmpty {
            print("metrics: /metrics and /healthz on \(configuration.metrics.listen.map(\.description).joined(separator: ", "))")
        }
        let workers = configuration.workers.map(String.init) ?? "auto"
        let interfaces = configuration.intercept.interfaces.isEmpty ? "none" : configuration.intercept.interfaces.joined(separator: ", ")
        print("\(options.config): ok (interfaces: \(interfaces); workers: \(workers); upstream: \(configuration.upstream.mode.rawValue))")
        if strict && rejected > 0 {
            print("error: \(rejected) rejected line(s) (--strict)")
            throw ExitCode(1)
        }
    }
}

extension Check {
    /// A URL list's cached copy and its last download, from the copy's metadata.
    static func describe(_ subscription: Configuration.ListSubscription, in filters: Configuration.Filters) -> String {
        let copy = subscription.cacheFile(in: filters.cacheDirectory)
        let every = "every \(filters.refreshSeconds(of: subscription)) s"
        guard access(copy, F_OK) == 0 else {
            let meta = CachedCopy.read(copy: copy, url: subscription.url)
            return "\(subscription.url): no downloaded copy yet (\(copy)); the relay downloads it at start, \(every)"
                + (meta?.lastError.map { "; last download failed: \($0)" } ?? "")
        }
        let meta = CachedCopy.read(copy: copy, url: subscription.url)
        func when(_ t: Double?) -> String {
            guard let t else { return "unknown" }
            return Date(timeIntervalSince1970: t).formatted(.iso8601)
        }
        var text = "\(subscription.url): cached copy \(copy), \(meta?.bytes ?? 0) bytes, changed \(when(meta?.changed)), confirmed \(when(meta?.confirmed)), \(every)"
        if let error = meta?.lastError {
            text += "\n  warning: the last download (\(when(meta?.attempted))) failed: \(error); the cached copy is in service"
        }
        return text
    }
}

extension Check {
    /// The client-name files: what each gives, and every line not used (file:line). A missing
    /// file is a warning: the relay starts without it and reads it once it appears.
    static func checkNames(_ sources: Configuration.NameSources) -> Int {
        var unused = 0
        for (kind, paths) in [("hosts", sources.hosts), ("leases", sources.leases)] {
            for path in paths {
                switch RegularFile.read(path, limit: ClientNameFiles.maxFileBytes) {
                case .success(let bytes):
                    let contents = kind == "hosts" ? HostsFile.parse(bytes, file: path) : LeaseFile.parse(bytes, file: path)
                    let format = kind == "hosts" ? "hosts" : LeaseFile.format(of: bytes).rawValue
                    print("\(path): \(contents.names.count) client names (\(format)), \(contents.problems.count) lines not used (clients.names.\(kind))")
                    for problem in contents.problems { print("  \(problem)") }
                    unused += contents.problems.count
                case .failure(let failure):
                    print("warning: clients.names.\(kind): \(path) \(failure.reason); the relay reads it once it can")
                }
            }
        }
        if let ptr = sources.ptr { print("client names: PTR lookups to \(ptr), at most \(sources.ptrQueriesPerSecond) a second") }
        return unused
    }
}
