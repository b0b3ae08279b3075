import ArgumentParser
import Foundation
import Logging
import Configuration
import Relay

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Install interception and relay DNS in the foreground until SIGTERM or SIGINT.",
        discussion: """
            Needs CAP_NET_ADMIN, CAP_NET_RAW and CAP_NET_BIND_SERVICE (root has them; a service \
            user gets them as ambient capabilities). Interception lives in an nft table owned by \
            this process: if it exits or dies, the kernel removes the table and DNS flows directly \
            again. SIGUSR1 logs the counters; SIGHUP reloads lists and zones. Under systemd \
            (Type=notify) it reports READY, RELOADING, STOPPING and watchdog pings over \
            $NOTIFY_SOCKET.
            """)

    @OptionGroup var options: ConfigOptions

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() throws {
        bootstrapLogging(level: logLevel)
        let logger = Logger(label: "tproxy-relay")
        let configuration: Configuration
        do {
            configuration = try ConfigurationParser.load(path: options.config)
        } catch {
            logger.error("error: \(error)")
            throw ExitCode(1)
        }
        for warning in configuration.warnings { logger.warning("\(warning)") }
        RelayService.blockSignals()
        let service = RelayService(configuration: configuration, logger: logger)
        do {
            try service.start()
        } catch {
            logger.error("error: \(error)")
            throw ExitCode(1)
        }
        service.run()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// swift-log to standard error, once per process.
func bootstrapLogging(level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}
