/// What a worker publishes a few times a second for the service to read (the SIGUSR1 summary,
/// /metrics, the watchdog): a copy, so that reading never touches the worker's own state.
struct WorkerSnapshot: Sendable {
    var counters = Counters()
    var answers = AnswerTally()
    var upstream: UpstreamTally
    /// Queries waiting for an upstream answer now.
    var inFlight = 0
    /// Client TCP connections this worker holds now.
    var tcpConnections = 0
}
