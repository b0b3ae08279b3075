import Configuration
import Foundation
import LinuxNet
import ListDownload
import Logging
import RelayCore
import Rules

/// Keeps the URL lists fresh: its own thread (never a worker's) downloads each subscription at
/// start (unless its copy was confirmed in the last five minutes) and then every refresh period,
/// jittered by ±5 % so that a fleet of relays does not ask a list's server at the same second;
/// a failed download is tried again sooner (1 min, doubling, never later than the period).
///
/// After a round that changed a copy, the rules are reloaded through `FilterSources` like any
/// reload. A new copy whose rules will not load (nothing readable in it) is put back to the one
/// before it and the reload repeated, so that the rules in service never lose a list to a bad
/// download. Each outcome is logged and counted (`LoadStatus.downloads`, /metrics).
final class ListUpdater: @unchecked Sendable {
    private let filters: Configuration.Filters
    private let settings: ListRefresh.Settings
    private let sources: FilterSources
    private let logger: Logger
    private let condition = NSCondition()
    /// Under `condition`.
    private var stopping = false
    private var thread: SystemThread?
    /// Per subscription: when it is due (monotonic seconds) and its failures in a row.
    private var due: [Double]
    private var failures: [Int]
    private let random = RandomSource()
    private let cancellation = HTTPDownload.Cancellation()

    /// A copy confirmed this recently is not downloaded again at start (a restart loop must not
    /// hammer the list's server).
    static let freshAtStart = 300.0

    init(configuration: Configuration, sources: FilterSources, logger: Logger) {
        filters = configuration.filters
        settings = ListRefresh.Settings(maxBytes: filters.maxDownloadBytes, timeoutSeconds: filters.downloadTimeoutSeconds,
                                        caFile: filters.caFile, mark: configuration.intercept.bypassMark, cancellation: cancellation)
        self.sources = sources
        self.logger = logger
        let now = Self.now(), wall = SystemInfo.wallClockSeconds()
        due = filters.subscriptions.map { subscription in
            let copy = subscription.cacheFile(in: configuration.filters.cacheDirectory)
            // A copy changed on disk since it was downloaded (another size, a later time) is
            // fetched again at once.
            guard let meta = CachedCopy.read(copy: copy, url: subscription.url), let confirmed = meta.confirmed,
                  meta.describes(copy: copy), wall - confirmed < Self.freshAtStart, wall >= confirmed else { return now }
            return now + min(Double(configuration.filters.refreshSeconds(of: subscription)), Self.freshAtStart) - (wall - confirmed)
        }
        failures = Array(repeating: 0, count: filters.subscriptions.count)
    }

    func start() throws(Errno) {
        thread = try SystemThread.start(name: "list-updater") { [self] in run() }
        logger.info("list updater: \(filters.subscriptions.count) URL list\(filters.subscriptions.count == 1 ? "" : "s"), refreshed every \(filters.refreshSeconds) s, copies in \(filters.cacheDirectory)")
    }

    /// Stops the thread; a download in progress is abandoned (within about a second).
    func stop() {
        cancellation.cancel()
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
        thread?.join()
        thread = nil
    }

    private static func now() -> Double { Double(SystemInfo.monotonicNanoseconds()) / 1e9 }

    private func run() {
        while true {
            condition.lock()
            while !stopping, let next = due.min(), next > Self.now() {
                _ = condition.wait(until: Date(timeIntervalSinceNow: next - Self.now()))
            }
            let stop = stopping || due.isEmpty
            condition.unlock()
            if stop { return }
            round()
        }
    }

    /// Downloads every subscription that is due, then reloads once if any copy changed.
    private func round() {
        var updated: [Int] = []
        for (i, subscription) in filters.subscriptions.enumerated() where due[i] <= Self.now() {
            let copy = subscription.cacheFile(in: filters.cacheDirectory)
            let started = Self.now()
            let outcome = ListRefresh.run(url: subscription.url, pin: subscription.sha256, copy: copy, settings: settings)
            let ms = Int((Self.now() - started) * 1000)
            switch outcome {
            case .updated(let bytes):
                logger.info("list \(subscription.url): downloaded \(bytes) bytes in \(ms) ms")
                updated.append(i)
            case .unchanged:
                logger.info("list \(subscription.url): unchanged (\(ms) ms)")
                succeeded(i, subscription) { $0.unchanged += 1 }
            case .failed(let error):
                failed(i, subscription, "\(error.code): \(error.reason)")
                continue
            }
            let refresh = Double(filters.refreshSeconds(of: subscription))
            due[i] = Self.now() + refresh * (0.95 + 0.1 * Double(random.next(below: 1001)) / 1000)
        }
        guard !updated.isEmpty else { return }
        // A bad copy comes out, the reload again: at most once per list.
        var pending = updated
        for _ in 0...updated.count {
            guard let error = sources.reloadRules(addresses: false) else { break }
            guard let k = pending.firstIndex(where: { Self.isList(filters.subscriptions[$0], filters: filters, named: error.list) }) else { break }
            let i = pending.remove(at: k)
            let subscription = filters.subscriptions[i]
            ListRefresh.restorePrevious(copy: subscription.cacheFile(in: filters.cacheDirectory), url: subscription.url, reason: error.reason)
            failed(i, subscription, "content: the new copy was not loaded (\(error.reason)); the previous copy is back")
        }
        for i in pending { succeeded(i, filters.subscriptions[i]) { $0.updated += 1 } }
    }

    private static func isList(_ subscription: Configuration.ListSubscription, filters: Configuration.Filters, named list: String) -> Bool {
        list == subscription.url || list == subscription.cacheFile(in: filters.cacheDirectory)
    }

    private func succeeded(_ i: Int, _ subscription: Configuration.ListSubscription, _ count: (inout LoadStatus.Downloads) -> Void) {
        failures[i] = 0
        sources.loadStatus.download(subscription.url) {
            count(&$0)
            $0.lastSuccess = SystemInfo.wallClockSeconds()
            $0.lastError = nil
        }
    }

    private func failed(_ i: Int, _ subscription: Configuration.ListSubscription, _ reason: String) {
        failures[i] += 1
        let retry = min(Double(filters.refreshSeconds(of: subscription)), 60 * pow(2, Double(min(failures[i] - 1, 10))))
        due[i] = Self.now() + retry
        logger.error("list \(subscription.url): download failed, the copy in service stays (\(reason)); trying again in \(Int(retry)) s")
        sources.loadStatus.download(subscription.url) {
            $0.failed += 1
            $0.lastError = reason
        }
    }
}
