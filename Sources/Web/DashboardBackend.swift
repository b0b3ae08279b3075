/// What the dashboard asks of the relay. The relay's service implements it; every call comes
/// from the web thread, never a worker, and must not block for long (a reload is only asked
/// for, and happens where SIGHUP's does).
public protocol DashboardBackend: AnyObject, Sendable {
    /// Counters, the pause and the upstreams, as of now.
    func status() -> DashboardStatus
    /// Called at every turn of the web thread (at least once a second), so it must be cheap:
    /// ends a pause whose time is up, and returns the queries and blocked answered so far (for
    /// the per-minute chart).
    func turn() -> (queries: Int, blocked: Int)
    /// Every list and zone file in service, with what its last load said.
    func sources() -> DashboardSources
    /// Reads the lists and zones again, as SIGHUP does; returns at once.
    func requestReload(by who: String)
    /// Pauses filtering by the lists for `seconds` (nil: until resumed), or resumes (0);
    /// `who` is named in the relay's log. Returns the pause in force afterwards.
    func pause(seconds: Int?, by who: String) -> DashboardStatus.Pause?
    /// The pipeline's verdict on one query, stage by stage, with the rules that matched.
    func explain(name: String, type: String, client: String?, server: String?) -> Result<DashboardExplanation, DashboardError>
    /// The query log file, when the log is on.
    var queryLogPath: String? { get }
}

/// A request the dashboard cannot carry out, with the reason shown to the user.
public struct DashboardError: Error, Equatable, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}

public struct DashboardStatus: Encodable, Sendable {
    public struct Pause: Encodable, Equatable, Sendable {
        /// Unix seconds when filtering comes back; nil: until someone resumes it.
        public var until: Double?
        public var by: String
        public var since: Double
        public init(until: Double?, by: String, since: Double) {
            self.until = until
            self.by = by
            self.since = since
        }
    }

    /// One upstream series: a configured server, `addressed` (the servers clients asked, in
    /// `original` mode) or `rule` (`server=/d/` targets).
    public struct Upstream: Encodable, Sendable {
        public var server: String
        public var queries: Int
        public var timeouts: Int
        public init(server: String, queries: Int, timeouts: Int) {
            self.server = server
            self.queries = queries
            self.timeouts = timeouts
        }
    }

    public var version: String
    public var startTime: Double
    public var workers: Int
    public var queries: Int
    public var blocked: Int
    public var cached: Int
    public var forwarded: Int
    public var local: Int
    public var rewritten: Int
    public var rules: Int
    public var pause: Pause?
    public var upstreams: [Upstream]
    /// Every forwarded answer's time from the query to the answer, p50 and p99 (ms; the upper
    /// bound of the histogram bucket it falls in), or nil before the first.
    public var forwardedP50Ms: Double?
    public var forwardedP99Ms: Double?
    /// The relay's own addresses: a server clients addressed that is not one of them was
    /// written into the client (a hard-coded resolver).
    public var ownAddresses: [String]
    public var queryLog: Bool

    public init(version: String, startTime: Double, workers: Int, queries: Int, blocked: Int, cached: Int, forwarded: Int, local: Int,
                rewritten: Int, rules: Int, pause: Pause?, upstreams: [Upstream], forwardedP50Ms: Double? = nil, forwardedP99Ms: Double? = nil,
                ownAddresses: [String], queryLog: Bool) {
        self.version = version
        self.startTime = startTime
        self.workers = workers
        self.queries = queries
        self.blocked = blocked
        self.cached = cached
        self.forwarded = forwarded
        self.local = local
        self.rewritten = rewritten
        self.rules = rules
        self.pause = pause
        self.upstreams = upstreams
        self.forwardedP50Ms = forwardedP50Ms
        self.forwardedP99Ms = forwardedP99Ms
        self.ownAddresses = ownAddresses
        self.queryLog = queryLog
    }
}

public struct DashboardSources: Encodable, Sendable {
    public struct Rejected: Encodable, Sendable {
        public var line: Int
        public var text: String
        public var reason: String
        public init(line: Int, text: String, reason: String) {
            self.line = line
            self.text = text
            self.reason = reason
        }
    }

    public struct List: Encodable, Sendable {
        public var path: String
        public var format: String
        public var rules: Int
        public var exceptions: Int
        public var ignored: Int
        public var rejectedCount: Int
        /// The first rejected lines (at most 100).
        public var rejected: [Rejected]
        public var loaded: Bool
        public var lastLoad: Double?
        public init(path: String, format: String, rules: Int, exceptions: Int, ignored: Int, rejectedCount: Int, rejected: [Rejected],
                    loaded: Bool, lastLoad: Double?) {
            self.path = path
            self.format = format
            self.rules = rules
            self.exceptions = exceptions
            self.ignored = ignored
            self.rejectedCount = rejectedCount
            self.rejected = rejected
            self.loaded = loaded
            self.lastLoad = lastLoad
        }
    }

    public struct Zone: Encodable, Sendable {
        public var file: String
        public var origin: String
        public var records: Int
        public var loaded: Bool
        public var lastLoad: Double?
        public init(file: String, origin: String, records: Int, loaded: Bool, lastLoad: Double?) {
            self.file = file
            self.origin = origin
            self.records = records
            self.loaded = loaded
            self.lastLoad = lastLoad
        }
    }

    public var lists: [List]
    public var zones: [Zone]
    /// The last reload: when and how it went (nil: none since start).
    public var lastReload: Double?
    public var lastReloadResult: String?
    public init(lists: [List], zones: [Zone], lastReload: Double?, lastReloadResult: String?) {
        self.lists = lists
        self.zones = zones
        self.lastReload = lastReload
        self.lastReloadResult = lastReloadResult
    }
}

public struct DashboardExplanation: Encodable, Sendable {
    public struct Step: Encodable, Sendable {
        public var stage: String
        public var result: String
        public init(stage: String, result: String) {
            self.stage = stage
            self.result = result
        }
    }

    public struct Match: Encodable, Sendable {
        public var list: String
        public var line: Int
        public var text: String
        public var decided: Bool
        public var important: Bool
        public init(list: String, line: Int, text: String, decided: Bool, important: Bool) {
            self.list = list
            self.line = line
            self.text = text
            self.decided = decided
            self.important = important
        }
    }

    public var name: String
    public var type: String
    public var client: String?
    public var verdict: String
    public var paused: Bool
    public var steps: [Step]
    public var matches: [Match]
    public init(name: String, type: String, client: String?, verdict: String, paused: Bool, steps: [Step], matches: [Match]) {
        self.name = name
        self.type = type
        self.client = client
        self.verdict = verdict
        self.paused = paused
        self.steps = steps
        self.matches = matches
    }
}
