import Configuration
import Foundation
import Interception
import LinuxNet
import Logging
import RelayCore
import Rules
import Synchronization
import Web
import Zones

/// The lists, zones and blocked-address files in service: loading them at start (one that
/// cannot be read stops start-up), reloading them (SIGHUP, the watcher, the dashboard; one at a
/// time; a file that fails keeps its previous version), and pausing filtering.
///
/// A pause hands every worker the empty rule set, swapped in whole like any reload, so that the
/// datapath pays nothing for the feature; the lists stay loaded here and come back at resume
/// (or when the pause runs out). A reload during a pause is kept for the resume.
final class FilterSources: @unchecked Sendable {
    private let configuration: Configuration
    private let logger: Logger
    let loadStatus = LoadStatus()
    /// Reloads and pauses, one at a time; everything below is read and written under it.
    private let lock = NSLock()
    /// The rules loaded (in force unless paused), and the zones in service (kept to carry good
    /// zones across a reload where one file fails).
    private(set) var rules: RuleSet = .empty
    private(set) var zones: LocalZones = .empty
    private var pauseState: DashboardStatus.Pause?
    private(set) var lastReload: (time: Double, result: String)?
    private var workers: [Worker] = []
    private var table: NftablesTable?

    init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Start-up: the lists, the zones and the blocked addresses, or the first one that cannot be read.
    func loadAtStart() throws -> [IPPrefix]? {
        rules = try loadRulesAtStart()
        if let directory = configuration.zones {
            let outcome = ZoneLoader.load(directory: directory)
            if let first = outcome.errors.first {
                throw RelayError(.invalidConfiguration, "zone \(first)" + (outcome.errors.count > 1 ? " (and \(outcome.errors.count - 1) more)" : ""))
            }
            zones = outcome.zones
            recordZones(outcome)
            logZones()
        }
        return configuration.bypass.blockAddresses.isEmpty ? nil : try BlockedAddresses.load(configuration.bypass.blockAddresses, logger: logger)
    }

    /// The lists at start: a local list that cannot be read stops start-up; a URL list's cached
    /// copy that cannot be read is put aside (`.broken`) and the list starts empty, to be
    /// downloaded again, so that a damaged cache never keeps the relay down.
    private func loadRulesAtStart() throws -> RuleSet {
        let filters = configuration.filters
        let names = filters.cachedListNames
        for subscription in filters.subscriptions where access(subscription.cacheFile(in: filters.cacheDirectory), F_OK) != 0 {
            logger.warning("list \(subscription.url): no downloaded copy yet; it is empty until the first download")
        }
        for _ in 0...filters.subscriptions.count {
            do {
                return try loadRules()
            } catch {
                guard let copy = names.first(where: { $0.value == error.list || $0.key == error.list })?.key else {
                    throw RelayError(.invalidConfiguration, "rule list \(error)")
                }
                logger.error("list \(names[copy]!): the downloaded copy \(copy) cannot be used (\(error.reason)); put aside as \(copy).broken, downloading again")
                try? FileCalls.rename(copy, to: copy + ".broken")
            }
        }
        throw RelayError(.invalidConfiguration, "the downloaded lists in \(filters.cacheDirectory) cannot be used")
    }

    /// Where reloads go once the workers run.
    func attach(workers: [Worker], table: NftablesTable?) {
        lock.withLock {
            self.workers = workers
            self.table = table
        }
    }

    func detach() {
        lock.withLock {
            workers = []
            table = nil
        }
    }

    // MARK: Reloading

    /// Builds a new rule set off the datapath and hands it to every worker (unless filtering is
    /// paused); a list that fails to load keeps the previous set in force, and is returned.
    @discardableResult
    func reloadRules(addresses: Bool = true) -> RuleLoadError? {
        lock.lock()
        defer { lock.unlock() }
        var failed: RuleLoadError?
        do {
            rules = try loadRules()
            if pauseState == nil { for worker in workers { worker.install(rules) } }
            logger.info("reloaded: \(rules.ruleCount) rules in force\(pauseState != nil ? " once filtering resumes" : "")")
            lastReload = (SystemInfo.wallClockSeconds(), "\(rules.ruleCount) rules")
        } catch {
            logger.error("reload failed, the previous rules stay in force: \(error)")
            lastReload = (SystemInfo.wallClockSeconds(), "failed: \(error)")
            failed = error
        }
        guard addresses, !configuration.bypass.blockAddresses.isEmpty, let table else { return failed }
        do {
            try table.replaceBlockedAddresses(try BlockedAddresses.load(configuration.bypass.blockAddresses, logger: logger))
        } catch {
            logger.error("bypass.block_addresses: reload failed, the previous addresses stay blocked: \(error)")
        }
        return failed
    }

    /// Reloads the zones directory; a file that fails keeps its previous version in service.
    func reloadZones() {
        guard let directory = configuration.zones else { return }
        lock.lock()
        defer { lock.unlock() }
        let outcome = ZoneLoader.load(directory: directory, previous: zones)
        for error in outcome.errors { logger.error("zone reload: \(error); the version in service stays") }
        zones = outcome.zones
        recordZones(outcome)
        for worker in workers { worker.install(outcome.zones) }
        logZones()
    }

    /// Loads the configured lists (a URL list from its cached copy; none yet: empty until the
    /// first download) and logs what each held; rejected lines are logged with file:line.
    private func loadRules() throws(RuleLoadError) -> RuleSet {
        let filters = configuration.filters
        guard !filters.lists.isEmpty else { return .empty }
        let started = SystemInfo.monotonicNanoseconds()
        let loaded: RuleSet
        do {
            loaded = try filters.loadRuleSet()
        } catch {
            loadStatus.listFailed(error.list)
            throw error
        }
        let now = SystemInfo.wallClockSeconds()
        for report in loaded.reports { loadStatus.listLoaded(report.list, rules: report.rules + report.exceptions, at: now) }
        let ms = (SystemInfo.monotonicNanoseconds() - started) / 1_000_000
        for report in loaded.reports {
            logger.info("list \(report.list): \(report.rules) rules, \(report.exceptions) exceptions, \(report.ignored) ignored, \(report.rejected.count) rejected")
            for bad in report.rejected.prefix(20) {
                logger.warning("\(report.list):\(bad.line): rejected: \(bad.reason): \(bad.text)")
            }
        }
        logger.info("rules loaded: \(loaded.ruleCount) in \(ms) ms")
        return loaded
    }


    private func recordZones(_ outcome: ZoneLoader.Outcome) {
        loadStatus.zonesLoaded(outcome.zones.zones.map { ($0.file, $0.recordCount) }, failed: outcome.errors.map(\.file),
                               at: SystemInfo.wallClockSeconds())
    }

    private func logZones() {
        logger.info("zones in service: \(zones.zones.map { "\($0.origin) (\($0.recordCount) records)" }.joined(separator: ", "))")
    }

    // MARK: Pausing

    /// Pauses filtering by the lists for `seconds` (nil: until resumed), or resumes with 0.
    /// Zones, the loop guard and the bypass answers stay.
    func pause(seconds: Int?, by who: String) -> DashboardStatus.Pause? {
        lock.lock()
        defer { lock.unlock() }
        if seconds == 0 {
            resumeLocked(why: "resumed by \(who)")
            return nil
        }
        let now = SystemInfo.wallClockSeconds()
        let wasPaused = pauseState != nil
        pauseState = DashboardStatus.Pause(until: seconds.map { now + Double($0) }, by: who, since: now)
        if !wasPaused { for worker in workers { worker.install(RuleSet.empty) } }
        logger.warning("filtering paused \(seconds.map { "for \($0) s" } ?? "until resumed") by \(who): queries are not checked against the lists")
        return pauseState
    }

    /// The pause in force, ending it first when its time is up.
    var pause: DashboardStatus.Pause? {
        lock.lock()
        defer { lock.unlock() }
        if let until = pauseState?.until, SystemInfo.wallClockSeconds() >= until { resumeLocked(why: "the pause ran out") }
        return pauseState
    }

    private func resumeLocked(why: String) {
        guard pauseState != nil else { return }
        pauseState = nil
        for worker in workers { worker.install(rules) }
        logger.warning("filtering resumed (\(why)): \(rules.ruleCount) rules in force")
    }
}
