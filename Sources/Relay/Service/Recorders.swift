import ClientNames
import Configuration
import Dnstap
import Logging
import QueryLog

/// What records the workers' answers off the datapath, each on its own thread and fed by one
/// bounded ring per worker: the query log's writer (`querylog`) and the dnstap writer (`dnstap`).
/// Started before the workers run, stopped after they have drained, so that what they answered
/// while draining is recorded too.
final class Recorders {
    let queryLog: QueryLogWriter?
    let dnstap: DnstapWriter?

    /// `names`: client names for the query log's lines (nil: no name sources).
    init(configuration: Configuration, names: ClientNameDirectory? = nil, logger: Logger) {
        if configuration.querylog.isOn, let path = configuration.querylog.path {
            queryLog = QueryLogWriter(settings: .init(path: path, rotateSize: configuration.querylog.rotateSize,
                                                      keep: configuration.querylog.keep, anonymize: configuration.querylog.anonymize),
                                      lists: configuration.filters.lists, listFiles: configuration.filters.listFiles,
                                      names: names, logger: logger)
        } else {
            queryLog = nil
        }
        dnstap = configuration.dnstap.isOn ? DnstapWriter(settings: configuration.dnstap, bypassMark: configuration.intercept.bypassMark,
                                                                  lists: configuration.filters.lists, listFiles: configuration.filters.listFiles,
                                                                  logger: logger) : nil
    }

    /// One worker's rings (call once per worker, before `start`).
    func makeRings() -> (queryLog: QueryLogRing?, dnstap: DnstapRing?) {
        (queryLog?.makeRing(), dnstap?.makeRing())
    }

    /// Opens the query log file and a dnstap file now, so that a bad path stops start-up with a
    /// clear message, and starts the threads.
    func start() throws {
        try queryLog?.start()
        do {
            try dnstap?.start()
        } catch {
            queryLog?.stop()
            throw error
        }
    }

    /// Writes what is left and stops (after the workers); the summaries for the relay's log.
    func stop() -> [String] {
        queryLog?.stop()
        dnstap?.stop()
        return [queryLog?.summary, dnstap?.summary].compactMap { $0 }
    }
}
