import Configuration
import Glibc
import LinuxNet
import Pipeline
import QUIC
import QueryLog
import RelayCore
import Rules

/// QUIC on the datapath (docs/QUIC.md), one per worker: datagrams to UDP 443 arrive on the
/// worker's QUIC listeners by TPROXY; each (client, original destination) is a flow with its own
/// upstream socket, connected to the destination and carrying the bypass mark. A new flow's
/// first datagrams are held while the SNI is read from its Initial packets (at most
/// `hold_datagrams` datagrams or `hold_time`), then the rules decide: blocked flows' datagrams
/// are dropped (the browser falls back to TCP), others are released in order and relayed both
/// ways in batches. Answers to the client leave from the address and port it sent to (a reply
/// socket). It owns its listeners, flows, buffers and counters.
final class QUICRelay {
    /// Larger datagrams are dropped (and counted): QUIC keeps to the path MTU, 1,200–1,500 bytes.
    static let maxDatagram = 4096
    /// Receive buffer of each flow's upstream socket (QUIC stacks ask for several MB).
    static let flowReceiveBuffer: Int32 = 2 << 20

    let settings: Configuration.QUIC
    /// This worker's share of `limits.max_quic_flows`.
    let maxFlows: Int
    let bypassMark: UInt32
    /// The rules in force (the worker swaps them in on reload).
    var rules: RuleStage
    let epoll: Epoll
    private let replySockets: ReplySockets
    let queryLog: QueryLogRing?
    private(set) var listeners: [Socket]
    var flows = Slots<QUICFlow>()
    private var index: [QUICFlowKey: Int] = [:]
    private var generation: UInt32 = 0
    /// Client datagrams (with their original destinations), and datagrams from servers.
    private let receiver = BatchReceiver(capacity: Worker.batchSize, messageSize: QUICRelay.maxDatagram)
    private let upstreamReceiver = BatchReceiver(capacity: Worker.batchSize, messageSize: QUICRelay.maxDatagram)
    /// Client datagrams go upstream in GSO runs (one sendmsg per run of full-sized datagrams).
    private let segments = SegmentedSender()
    /// Server datagrams go to the client the same way, from the reply socket.
    private let downSegments = SegmentedSender()
    var counters = Counters()
    let warn: (String) -> Void
    /// This host's addresses when its own traffic is captured: its flows are logged as local.
    var localAddresses: [IPAddress] = []
    /// `limits.client_qps`: new flows count against their client's rate (shared by the workers).
    var rateLimiter: ClientRateLimiter?

    init(settings: Configuration.QUIC, maxFlows: Int, bypassMark: UInt32, rules: RuleStage, listeners: [Socket], epoll: Epoll,
         replySockets: ReplySockets, queryLog: QueryLogRing?, warn: @escaping (String) -> Void) throws {
        self.settings = settings
        self.maxFlows = maxFlows
        self.bypassMark = bypassMark
        self.rules = rules
        self.listeners = listeners
        self.epoll = epoll
        self.replySockets = replySockets
        self.queryLog = queryLog
        self.warn = warn
        for (i, listener) in listeners.enumerated() { try epoll.add(listener.fd, token: EpollToken.quicListener | UInt64(i)) }
    }

    /// Counters including what the senders dropped (the upstream send buffer refused, EAGAIN).
    var published: Counters {
        var c = counters
        c.quicOpen = flows.count
        c.quicDropped += segments.dropped + downSegments.dropped
        return c
    }

    func closeListeners() {
        for listener in listeners {
            epoll.remove(listener.fd)
            listener.close()
        }
        listeners = []
    }

    // MARK: Client → server

    func receive(listener i: Int) {
        guard i < listeners.count else { return }
        let fd = listeners[i].fd
        for _ in 0..<Worker.roundsPerEvent {
            let n: Int
            do { n = try receiver.receive(from: fd) } catch {
                warn("recvmmsg on a QUIC listener failed: \(error)")
                return
            }
            if n == 0 { return }
            let now = SystemInfo.monotonicNanoseconds()
            for i in 0..<n { handleQUICDatagram(i, now: now) }
            segments.flush()
            if n < receiver.capacity { return }
        }
    }

    @inline(__always)
    private func handleQUICDatagram(_ i: Int, now: UInt64) {
        guard !receiver.isTruncated(i), let client = receiver.source(i),
              let destination = receiver.controlMessages(i).originalDestination else {
            counters.quicDropped += 1
            return
        }
        let payload = UnsafeRawBufferPointer(receiver.payload(i))
        let key = QUICFlowKey(client: client, destination: destination)
        let flow: QUICFlow
        if let slot = index[key], let existing = flows[slot] {
            flow = existing
        } else {
            guard let opened = openFlow(key, now: now) else { return }
            flow = opened
        }
        flow.lastActive = now
        switch flow.state {
        case .relaying:
            if settings.sniff && (flow.lateSniffer != nil || InitialSniffer.startsWithInitial(payload)) && sniffLate(flow, payload, now: now) {
                flow.bytesUp &+= UInt64(payload.count)
                counters.quicDropped += 1
                return
            }
            flow.bytesUp &+= UInt64(payload.count)
            flow.packetsUp &+= 1
            counters.quicPacketsUp += 1
            segments.append(fd: flow.upstream!.fd, bytes: payload)
        case .blocked:
            flow.bytesUp &+= UInt64(payload.count)
            counters.quicDropped += 1
        case .sniffing:
            flow.held.append(Array(payload))
            let progress = flow.sniffer!.feed(payload)
            switch progress {
            case .needMore:
                if flow.held.count >= settings.holdDatagrams { decide(flow, now: now) }
            case .found(let hello):
                flow.serverName = hello.serverName
                decide(flow, now: now)
            case .failed(let failure):
                flow.sniFailure = failure.code
                decide(flow, now: now)
            }
        }
    }

    /// A new flow: blocked outright under `quic.block`, sniffed, or relayed at once. nil when
    /// the flow cap is reached or no upstream socket can be opened (both counted).
    func openFlow(_ key: QUICFlowKey, now: UInt64) -> QUICFlow? {
        // A new flow counts against its client's rate like a query (`limits.client_qps`).
        if let rateLimiter, rateLimiter.admit(key.client.address, nowMilliseconds: now / 1_000_000) == .limit {
            counters.rateLimited += 1
            counters.quicDropped += 1
            return nil
        }
        guard flows.count < maxFlows else {
            counters.quicRefused += 1
            counters.quicDropped += 1
            return nil
        }
        generation &+= 1
        let hold = UInt64(settings.holdMilliseconds) * 1_000_000
        let flow = QUICFlow(key: key, generation: generation, state: .sniffing, now: now, wall: Self.wallMicros(), holdUntil: now + hold)
        counters.quicFlows += 1
        if settings.block {
            flow.state = .blocked
            flow.action = .blocked
            counters.quicBlocked += 1
        } else {
            do {
                let socket = try Socket.udp(for: key.destination)
                try socket.set(.mark(bypassMark))
                // A download arrives faster than one batch drains: the default ~212 KB (about 90
                // full-sized datagrams) overflowed by most of a bulk flow (bench/quic.sh down).
                // A limit, not an allocation: idle flows cost nothing.
                if (try? socket.set(.receiveBufferForce(QUICRelay.flowReceiveBuffer))) == nil {
                    try? socket.set(.receiveBuffer(QUICRelay.flowReceiveBuffer))
                }
                try socket.connect(to: key.destination)
                flow.upstream = socket
            } catch {
                warn("QUIC: cannot open an upstream socket to \(key.destination): \(error)")
                counters.quicRefused += 1
                counters.quicDropped += 1
                return nil
            }
            if settings.sniff && settings.holdDatagrams > 0 {
                flow.sniffer = InitialSniffer(maxDatagrams: settings.holdDatagrams)
            } else {
                flow.state = .relaying
            }
        }
        let slot = flows.insert(flow)
        index[key] = slot
        if let upstream = flow.upstream {
            do {
                try epoll.add(upstream.fd, token: EpollToken.quicFlow | UInt64(flow.generation) << 24 | UInt64(slot))
            } catch {
                warn("QUIC: epoll_ctl for a flow failed: \(error)")
                closeFlow(slot, now: now)
                return nil
            }
        }
        // Decided already (quic.block, or sniffing off): logged now. Sniffed flows are logged when
        // the SNI is read or the hold gives up (`decide`).
        if flow.state != .sniffing { recordFlow(flow, now: now) }
        return flow
    }

    // MARK: Server → client

    func receiveUpstream(token: UInt64) {
        let slot = Int(token & 0xff_ffff)
        guard let flow = flows[slot], UInt64(flow.generation) == (token >> 24) & 0xffff_ffff, let fd = flow.upstream?.fd else { return }
        guard let replyFD = replySockets.descriptor(for: flow.key.destination) else {
            warn("QUIC: " + (replySockets.lastError ?? "no reply socket for \(flow.key.destination)"))
            return
        }
        for _ in 0..<Worker.roundsPerEvent {
            let n: Int
            do { n = try upstreamReceiver.receive(from: fd) } catch {
                // ICMP unreachable on a connected socket comes back here; the flow idles out.
                return
            }
            if n == 0 { return }
            flow.lastActive = SystemInfo.monotonicNanoseconds()
            for i in 0..<n {
                if upstreamReceiver.isTruncated(i) {
                    counters.quicDropped += 1
                    continue
                }
                let payload = UnsafeRawBufferPointer(upstreamReceiver.payload(i))
                flow.bytesDown &+= UInt64(payload.count)
                flow.packetsDown &+= 1
                downSegments.append(fd: replyFD, bytes: payload, to: flow.key.client)
            }
            counters.quicPacketsDown += n
            downSegments.flush()
            if n < upstreamReceiver.capacity { return }
        }
    }

    // MARK: Ending flows

    /// Releases held datagrams whose hold time passed and closes idle flows; every 100 ms.
    func sweep(now: UInt64) {
        let idle = UInt64(settings.idleTimeoutMilliseconds) * 1_000_000
        for slot in flows.occupied {
            guard let flow = flows[slot] else { continue }
            // Held too long: relayed without an SNI (`decide` records it as incomplete).
            if flow.state == .sniffing && now >= flow.holdUntil { decide(flow, now: now) }
            if now &- flow.lastActive >= idle { closeFlow(slot, now: now) }
        }
    }

    /// Ends a flow: writes its end entry (bytes and duration) and closes its socket.
    func closeFlow(_ slot: Int, now: UInt64) {
        guard let flow = flows[slot] else { return }
        if flow.state == .sniffing { decide(flow, now: now) }
        recordFlow(flow, now: now, end: true)
        if let upstream = flow.upstream {
            epoll.remove(upstream.fd)
            upstream.close()
            flow.upstream = nil
        }
        index.removeValue(forKey: flow.key)
        flows.remove(slot)
        counters.quicClosed += 1
    }

    func closeAll() {
        let now = SystemInfo.monotonicNanoseconds()
        for slot in flows.occupied { closeFlow(slot, now: now) }
        closeListeners()
    }
}
