import Foundation
import Glibc
import LinuxNet
import Logging
import RelayCore

/// Tells the service manager how the relay is doing: systemd's notify protocol (sd_notify(3)),
/// a datagram of `KEY=VALUE` lines to the socket named by `$NOTIFY_SOCKET`, without libsystemd.
///
/// `READY=1` once interception is installed and the workers serve; `RELOADING=1` (with
/// `MONOTONIC_USEC`) and `READY=1` around a reload; `STOPPING=1` when stopping; `WATCHDOG=1` every
/// half `$WATCHDOG_USEC` while every worker's loop turns (a stuck worker stops the pings, and
/// systemd restarts the service). Outside systemd (no `$NOTIFY_SOCKET`) it does nothing.
final class ServiceNotifier {
    private let path: String?
    private let socket: Socket?
    /// Half the watchdog interval (ns), or nil when no watchdog is asked for.
    let watchdogInterval: UInt64?
    private let logger: Logger
    private var failed = false

    init(environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger) {
        self.logger = logger
        let path = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        self.path = path
        socket = path == nil ? nil : try? Socket.unixDatagram()
        // WATCHDOG_PID, when set, names the process the watchdog is for (sd_watchdog_enabled(3)).
        let forUs = environment["WATCHDOG_PID"].map { Int32($0) == getpid() } ?? true
        if forUs, let usec = environment["WATCHDOG_USEC"].flatMap(UInt64.init), usec > 0 {
            watchdogInterval = usec * 1000 / 2
        } else {
            watchdogInterval = nil
        }
    }

    var isActive: Bool { socket != nil }

    func ready(status: String) { send("READY=1\nSTATUS=\(status)") }

    func reloading() { send("RELOADING=1\nMONOTONIC_USEC=\(SystemInfo.monotonicNanoseconds() / 1000)") }

    func stopping() { send("STOPPING=1") }

    func watchdog() { send("WATCHDOG=1") }

    private func send(_ message: String) {
        guard let socket, let path else { return }
        var bytes = Array(message.utf8)
        do {
            _ = try bytes.withUnsafeMutableBytes { try socket.send(UnsafeRawBufferPointer($0), toUnixPath: path) }
        } catch {
            // Said once: a service manager that went away is not worth a log line per ping.
            if !failed { logger.warning("cannot notify the service manager at \(path): \(error)") }
            failed = true
        }
    }
}
