import ArgumentParser
import Configuration
import Foundation
import LinuxNet
import ListDownload
import RelayCore
import Rules

/// `tproxy-relay update-lists`: downloads every URL list now, as the running relay's updater
/// would (conditional requests, the same checks, the same cache), and says what happened to each.
/// The running relay applies the new copies at its next reload (SIGHUP; `systemctl reload`).
struct UpdateLists: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update-lists",
        abstract: "Download the URL lists of filters.lists into the cache now.",
        discussion: """
            Each list is fetched with If-None-Match / If-Modified-Since from its cached copy, checked (size, \
            text, not HTML, its pinned sha256, at least one readable rule) and swapped into filters.cache_dir; \
            a failure keeps the copy there. Exits 1 when any download failed. Run it as the service's user \
            (the cache belongs to it), then reload the relay: systemctl reload tproxy-relay (or kill -HUP).
            """)

    @OptionGroup var options: ConfigOptions

    func run() throws {
        let configuration: Configuration
        do { configuration = try ConfigurationParser.load(path: options.config) } catch {
            print("error: \(error)")
            throw ExitCode(1)
        }
        let filters = configuration.filters
        guard !filters.subscriptions.isEmpty else {
            print("filters.lists has no URL: nothing to download")
            return
        }
        let settings = ListRefresh.Settings(maxBytes: filters.maxDownloadBytes, timeoutSeconds: filters.downloadTimeoutSeconds,
                                            caFile: filters.caFile, mark: Self.markIfAllowed(configuration.intercept.bypassMark))
        var failed = 0
        for subscription in filters.subscriptions {
            let copy = subscription.cacheFile(in: filters.cacheDirectory)
            switch ListRefresh.run(url: subscription.url, pin: subscription.sha256, copy: copy, settings: settings) {
            case .updated(let bytes):
                // What the relay's reload would make of it: a copy with no readable rule goes back.
                do {
                    let report = try RuleSetBuilder.load(paths: [copy], names: [copy: subscription.url]).reports[0]
                    print("\(subscription.url): updated, \(bytes) bytes, \(report.rules) rules, \(report.rejected.count) rejected (\(copy))")
                } catch {
                    ListRefresh.restorePrevious(copy: copy, url: subscription.url, reason: error.reason)
                    print("\(subscription.url): failed: the new copy has no usable rules (\(error.reason)); the previous copy is back")
                    failed += 1
                }
            case .unchanged:
                print("\(subscription.url): unchanged (\(copy))")
            case .failed(let error):
                print("\(subscription.url): failed: \(error.code): \(error.reason); the cached copy stays")
                failed += 1
            }
        }
        if failed > 0 { throw ExitCode(1) }
    }

    /// The bypass mark needs CAP_NET_ADMIN; without it (a user running the command by hand) the
    /// download goes unmarked, which only matters where this host's own traffic is captured.
    static func markIfAllowed(_ mark: UInt32) -> UInt32 {
        SystemInfo.missingCapabilities([.netAdmin]).isEmpty ? mark : 0
    }
}
