import Configuration
import LinuxNet
import Logging
import RelayCore

/// How the process's descriptors are shared out (issue 13, finding 3).
///
/// Every QUIC flow, client TCP connection, upstream TCP connection, reply socket and replaced
/// upstream socket costs one descriptor. If their caps add up to more than the process may open,
/// a flood of any one kind takes the descriptors the others need: then every UDP answer fails
/// ("cannot open a reply socket") while interception stays installed, so nothing fails open.
/// The budget takes the fixed needs off the limit first and, when the caps do not fit in what is
/// left, lowers each in proportion (never below a small floor) and says so.
public struct DescriptorBudget: Equatable, Sendable {
    /// What the relay would like, from the configuration.
    public struct Wants: Equatable, Sendable {
        public var workers: Int
        /// Upstream UDP sockets per worker and family (`upstream.sockets`).
        public var upstreamSockets: Int
        public var tcpConnections: Int
        public var quicFlows: Int
        /// Per worker: reply sockets (one per address clients asked), upstream TCP connections,
        /// and per pool (family) replaced upstream UDP sockets still waiting for answers.
        public var replySocketsPerWorker = 1024
        public var upstreamConnectionsPerWorker = 256
        public var retiringPerPool = 256
        /// Per worker: sockets bound to clients' addresses (`upstream.client_identity: source`;
        /// 0 when no server has it). Their own retired sockets count as a third pool.
        public var sourceSocketsPerWorker = 0

        public init(workers: Int, upstreamSockets: Int, tcpConnections: Int, quicFlows: Int) {
            self.workers = workers
            self.upstreamSockets = upstreamSockets
            self.tcpConnections = tcpConnections
            self.quicFlows = quicFlows
        }
    }

    public var limit: Int
    public var tcpConnections: Int
    public var quicFlows: Int
    public var replySocketsPerWorker: Int
    public var upstreamConnectionsPerWorker: Int
    public var retiringPerPool: Int
    public var sourceSocketsPerWorker: Int
    /// Whether the caps had to be lowered to fit `limit`.
    public var lowered: Bool

    /// Descriptors held whatever the load: standard streams, netlink, the log, inotify, lists
    /// read at reload, and per worker its listeners, epoll, eventfd and upstream UDP sockets.
    public static func fixedNeeds(_ wants: Wants) -> Int {
        64 + wants.workers * (12 + 2 * wants.upstreamSockets)
    }

    /// The smallest limit the relay starts with: the fixed needs and a floor for each cap.
    public static func minimumLimit(_ wants: Wants) -> Int {
        fixedNeeds(wants) + 16 + 16 + wants.workers * (16 + 8 + 2 * 8 + (wants.sourceSocketsPerWorker > 0 ? 8 + 16 : 0))
    }

    /// Shares `limit` descriptors out; nil when even the floors do not fit.
    public static func plan(limit: Int, wants: Wants) -> DescriptorBudget? {
        guard limit >= minimumLimit(wants) else { return nil }
        let available = limit - fixedNeeds(wants)
        let w = wants.workers
        let pools = wants.sourceSocketsPerWorker > 0 ? 3 : 2
        let wanted = [wants.tcpConnections, wants.quicFlows, w * wants.replySocketsPerWorker,
                      w * wants.upstreamConnectionsPerWorker, w * pools * wants.retiringPerPool, w * wants.sourceSocketsPerWorker]
        let total = wanted.reduce(0, +)
        guard total > available else {
            return DescriptorBudget(limit: limit, tcpConnections: wants.tcpConnections, quicFlows: wants.quicFlows,
                                    replySocketsPerWorker: wants.replySocketsPerWorker,
                                    upstreamConnectionsPerWorker: wants.upstreamConnectionsPerWorker,
                                    retiringPerPool: wants.retiringPerPool, sourceSocketsPerWorker: wants.sourceSocketsPerWorker, lowered: false)
        }
        // Floors first, then what is left in proportion to what was wanted above the floors.
        let floors = [16, 16, w * 16, w * 8, w * pools * 8, wants.sourceSocketsPerWorker > 0 ? w * 16 : 0]
        let spare = available - floors.reduce(0, +)
        let above = zip(wanted, floors).map { max(0, $0 - $1) }
        let aboveTotal = max(1, above.reduce(0, +))
        let shares = zip(floors, above).map { floor, extra in floor + extra * spare / aboveTotal }
        return DescriptorBudget(limit: limit, tcpConnections: min(wants.tcpConnections, shares[0]),
                                quicFlows: min(wants.quicFlows, shares[1]),
                                replySocketsPerWorker: min(wants.replySocketsPerWorker, shares[2] / w),
                                upstreamConnectionsPerWorker: min(wants.upstreamConnectionsPerWorker, shares[3] / w),
                                retiringPerPool: min(wants.retiringPerPool, shares[4] / (pools * w)),
                                sourceSocketsPerWorker: min(wants.sourceSocketsPerWorker, shares[5] / w), lowered: true)
    }

    /// One line for the log.
    public var summary: String {
        "descriptor limit \(limit): tcp.max_connections \(tcpConnections), limits.max_quic_flows \(quicFlows), "
            + "reply sockets \(replySocketsPerWorker)/worker, upstream TCP connections \(upstreamConnectionsPerWorker)/worker, "
            + "replaced upstream sockets \(retiringPerPool)/family/worker"
            + (sourceSocketsPerWorker > 0 ? ", sockets bound to client addresses \(sourceSocketsPerWorker)/worker" : "")
    }
}

extension DescriptorBudget {
    /// Raises the descriptor limit and shares it out (DescriptorBudget); refuses to start when it
    /// is too low to serve at all.
    static func forService(_ configuration: Configuration, workers count: Int, logger: Logger) throws -> DescriptorBudget {
        let limit = SystemInfo.raiseDescriptorLimit()
        var wants = DescriptorBudget.Wants(workers: count, upstreamSockets: configuration.upstream.sockets,
                                           tcpConnections: configuration.tcp.maxConnections,
                                           quicFlows: configuration.intercept.quic ? configuration.limits.maxQUICFlows : 0)
        if configuration.upstream.usesSourceIdentity {
            wants.sourceSocketsPerWorker = max(1, configuration.upstream.sourceSockets / count)
        }
        guard let budget = DescriptorBudget.plan(limit: limit, wants: wants) else {
            throw RelayError(.invalidConfiguration,
                "the open-file limit is \(limit), below the \(DescriptorBudget.minimumLimit(wants)) descriptors \(count) workers need: raise it (LimitNOFILE= in the unit, ulimit -n), or set fewer workers")
        }
        if budget.lowered {
            logger.warning("\(budget.summary): lowered to fit the open-file limit; raise it (LimitNOFILE= in the unit, ulimit -n) for the configured caps")
        } else {
            logger.info("\(budget.summary)")
        }
        return budget
    }
}
