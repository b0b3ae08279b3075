import Glibc
import Logging
import Testing
@testable import Relay

/// Issue 18 (in part): what the notifier reads from systemd's environment.
@Suite struct ServiceNotifierTests {
    static let logger = Logger(label: "test")

    @Test func outsideSystemdItIsSilent() {
        let notifier = ServiceNotifier(environment: [:], logger: Self.logger)
        #expect(!notifier.isActive && notifier.watchdogInterval == nil)
        notifier.ready(status: "x")  // nothing to send to, nothing happens
    }

    @Test func theWatchdogPingsAtHalfItsInterval() {
        let notifier = ServiceNotifier(environment: ["NOTIFY_SOCKET": "/run/test.sock", "WATCHDOG_USEC": "30000000"], logger: Self.logger)
        #expect(notifier.isActive)
        #expect(notifier.watchdogInterval == 15_000_000_000)
    }

    @Test(arguments: [
        ["WATCHDOG_USEC": "0"],
        ["WATCHDOG_USEC": "soon"],
        ["WATCHDOG_USEC": "-5"],
        ["WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"],  // another process's watchdog
    ])
    func noWatchdogUnlessItIsOursAndValid(environment: [String: String]) {
        let notifier = ServiceNotifier(environment: environment.merging(["NOTIFY_SOCKET": "/run/test.sock"]) { a, _ in a }, logger: Self.logger)
        #expect(notifier.watchdogInterval == nil)
    }

    @Test func ourOwnPidKeepsTheWatchdog() {
        let notifier = ServiceNotifier(environment: ["NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "\(getpid())"],
                                       logger: Self.logger)
        #expect(notifier.watchdogInterval == 500_000_000)
    }
}
