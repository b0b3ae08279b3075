import Glibc
import LinuxNet
import QUIC
import RelayCore
import Rules

/// QUIC on the datapath (docs/QUIC.md): datagrams to UDP 443 arrive on the worker's QUIC
/// listeners by TPROXY; each (client, original destination) is a flow with its own upstream
/// socket, connected to the destination and carrying the bypass mark. A new flow's first
/// datagrams are held while the SNI is read from its Initial packets (at most `hold_datagrams`
/// datagrams or `hold_time`), then the rules decide: blocked flows' datagrams are dropped (the
/// browser falls back to TCP), others are released in order and relayed both ways in batches.
/// Answers to the client leave from the address and port it sent to (a reply socket).
extension Worker {
    // MARK: Client → server

    func receiveQUIC(fd: Int32) {
        for _ in 0..<Worker.roundsPerEvent {
            let n: Int
            do { n = try quicReceiver.receive(from: fd) } catch {
                warn("recvmmsg on a QUIC listener failed: \(error)")
                return
            }
            if n == 0 { return }
            let now = SystemInfo.monotonicNanoseconds()
            for i in 0..<n { handleQUICDatagram(i, now: now) }
            quicSegments.flush()
            if n < quicReceiver.capacity { return }
        }
    }

    @inline(__always)
    private func handleQUICDatagram(_ i: Int, now: UInt64) {
        guard !quicReceiver.isTruncated(i), let client = quicReceiver.source(i),
              let destination = quicReceiver.controlMessages(i).originalDestination else {
            counters.quicDropped += 1
            return
        }
        let payload = UnsafeRawBufferPointer(quicReceiver.payload(i))
        let key = QUICFlowKey(client: client, destination: destination)
        let flow: QUICFlow
        if let index = quicIndex[key], let existing = quicFlows[index] {
            flow = existing
        } else {
            guard let opened = openFlow(key, now: now) else { return }
            flow = opened
        }
        flow.lastActive = now
        switch flow.state {
        case .relaying:
            if settings.quic.sniff && (flow.lateSniffer != nil || InitialSniffer.startsWithInitial(payload)) && sniffLate(flow, payload, now: now) {
                flow.bytesUp &+= UInt64(payload.count)
                counters.quicDropped += 1
                return
            }
            flow.bytesUp &+= UInt64(payload.count)
            flow.packetsUp &+= 1
            counters.quicPacketsUp += 1
            quicSegments.append(fd: flow.upstream!.fd, bytes: payload)
        case .blocked:
            flow.bytesUp &+= UInt64(payload.count)
            counters.quicDropped += 1
        case .sniffing:
            flow.held.append(Array(payload))
            let progress = flow.sniffer!.feed(payload)
            switch progress {
            case .needMore:
                if flow.held.count >= settings.quic.holdDatagrams { decide(flow, now: now) }
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
    private func openFlow(_ key: QUICFlowKey, now: UInt64) -> QUICFlow? {
        guard quicFlows.count < settings.maxQUICFlows else {
            counters.quicRefused += 1
            counters.quicDropped += 1
            return nil
        }
        quicGeneration &+= 1
        let hold = UInt64(settings.quic.holdMilliseconds) * 1_000_000
        let flow = QUICFlow(key: key, generation: quicGeneration, state: .sniffing, now: now, wall: Self.wallMicros(), holdUntil: now + hold)
        counters.quicFlows += 1
        if settings.quic.block {
            flow.state = .blocked
            flow.action = .blocked
            counters.quicBlocked += 1
        } else {
            do {
                let socket = try Socket.udp(for: key.destination)
                try socket.set(.mark(settings.bypassMark))
                // A download arrives faster than one batch drains: the default ~212 KB (about 90
                // full-sized datagrams) overflowed by most of a bulk flow (bench/quic.sh down).
                // A limit, not an allocation: idle flows cost nothing.
                if (try? socket.set(.receiveBufferForce(Worker.quicFlowReceiveBuffer))) == nil {
                    try? socket.set(.receiveBuffer(Worker.quicFlowReceiveBuffer))
                }
                try socket.connect(to: key.destination)
                flow.upstream = socket
            } catch {
                warn("QUIC: cannot open an upstream socket to \(key.destination): \(error)")
                counters.quicRefused += 1
                counters.quicDropped += 1
                return nil
            }
            if settings.quic.sniff && settings.quic.holdDatagrams > 0 {
                flow.sniffer = InitialSniffer(maxDatagrams: settings.quic.holdDatagrams)
            } else {
                flow.state = .relaying
            }
        }
        let index = quicFlows.insert(flow)
        quicIndex[key] = index
        if let upstream = flow.upstream {
            do {
                try epoll.add(upstream.fd, token: Token.quicFlow | UInt64(flow.generation) << 24 | UInt64(index))
            } catch {
                warn("QUIC: epoll_ctl for a flow failed: \(error)")
                closeFlow(index, now: now)
                return nil
            }
        }
        if flow.state == .blocked { recordFlow(flow, now: now) }
        return flow
    }

    /// Whether the rules block a QUIC flow to `name`, and the rule that decided.
    private func rulesBlock(_ name: String, flow: QUICFlow) -> (blocked: Bool, rule: RuleOrigin?) {
        var bytes = Array(name.utf8)
        let match = bytes.withUnsafeMutableBytes { buffer in
            rules.decide(name: UnsafeRawBufferPointer(buffer), type: flow.key.destination.address.isIPv6 ? 28 : 1,
                         client: flow.key.client.address,
                         lists: settings.clientPolicy.isEmpty ? ListMask.all : settings.clientPolicy.lists(for: flow.key.client.address))
        }
        return (Self.blocksQUIC(match.verdict), match.rule.map { rules.origin(of: $0) })
    }

    /// Applies the rules to the flow's SNI (or relays it without one) and releases or drops
    /// what was held.
    private func decide(_ flow: QUICFlow, now: UInt64) {
        flow.version = flow.sniffer?.version ?? 0
        flow.sniffer = nil
        var blocked = false
        if let name = flow.serverName {
            let verdict = rulesBlock(name, flow: flow)
            blocked = verdict.blocked
            if let rule = verdict.rule { flow.rule = rule }
        } else {
            if flow.sniFailure == nil { flow.sniFailure = .incomplete }
            counters.quicNoSNI += 1
        }
        if blocked {
            block(flow, now: now)
            return
        }
        flow.state = .relaying
        // In order, straight away: these are copies owned by the flow, so no batch is needed.
        if let fd = flow.upstream?.fd {
            for datagram in flow.held {
                let sent = datagram.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if sent < 0 { counters.quicDropped += 1; continue }
                flow.bytesUp &+= UInt64(datagram.count)
                flow.packetsUp &+= 1
                counters.quicPacketsUp += 1
            }
        }
        flow.held = []
    }

    /// Turns a flow into a blocked one: what it held is dropped, its upstream socket closed, and
    /// it is logged now.
    private func block(_ flow: QUICFlow, now: UInt64) {
        flow.state = .blocked
        flow.action = .blocked
        counters.quicBlocked += 1
        counters.quicDropped += flow.held.count
        for datagram in flow.held { flow.bytesUp &+= UInt64(datagram.count) }
        flow.held = []
        flow.lateSniffer = nil
        // The upstream socket is not needed: a blocked flow only drops.
        if let upstream = flow.upstream {
            epoll.remove(upstream.fd)
            upstream.close()
            flow.upstream = nil
        }
        if !flow.logged { recordFlow(flow, now: now) }
    }

    /// Reads an Initial that arrives on a flow already relaying: a client may open a second
    /// connection on the same addresses, or send junk first so that the flow was decided without
    /// an SNI. A ClientHello read this way meets the rules like the first; true when it is
    /// blocked (the datagram carrying it, and all after it, are dropped). Costs nothing for
    /// datagrams that are not Initials, which after the handshake's first round trip is all.
    private func sniffLate(_ flow: QUICFlow, _ payload: UnsafeRawBufferPointer, now: UInt64) -> Bool {
        if flow.lateSniffer == nil { flow.lateSniffer = InitialSniffer(maxDatagrams: max(1, settings.quic.holdDatagrams)) }
        switch flow.lateSniffer!.feed(payload) {
        case .needMore:
            return false
        case .failed:
            flow.lateSniffer = nil
            return false
        case .found(let hello):
            flow.lateSniffer = nil
            guard let name = hello.serverName, name != flow.serverName else { return false }
            let verdict = rulesBlock(name, flow: flow)
            guard verdict.blocked else { return false }
            flow.serverName = name
            flow.sniFailure = nil
            if let rule = verdict.rule { flow.rule = rule }
            block(flow, now: now)
            return true
        }
    }

    /// Whether a rule's verdict stops a QUIC flow: blocks, and the local answers lists use to
    /// block (a hosts line's 0.0.0.0 or ::, an NXDOMAIN or REFUSED `$dnsrewrite`).
    static func blocksQUIC(_ verdict: RuleSet.Match.Verdict) -> Bool {
        switch verdict {
        case .block: return true
        case .rewrite(let address): return address.isUnspecified || address.isLoopback
        case .dnsRewrite(.rcode(let code)): return code == 3 || code == 5
        case .pass, .dnsRewrite: return false
        }
    }

    // MARK: Server → client

    func receiveQUICUpstream(token: UInt64) {
        let index = Int(token & 0xff_ffff)
        guard let flow = quicFlows[index], UInt64(flow.generation) == (token >> 24) & 0xffff_ffff, let fd = flow.upstream?.fd else { return }
        guard let replyFD = replySockets.descriptor(for: flow.key.destination) else {
            warn("QUIC: " + (replySockets.lastError ?? "no reply socket for \(flow.key.destination)"))
            return
        }
        for _ in 0..<Worker.roundsPerEvent {
            let n: Int
            do { n = try quicUpstreamReceiver.receive(from: fd) } catch {
                // ICMP unreachable on a connected socket comes back here; the flow idles out.
                return
            }
            if n == 0 { return }
            flow.lastActive = SystemInfo.monotonicNanoseconds()
            for i in 0..<n {
                if quicUpstreamReceiver.isTruncated(i) {
                    counters.quicDropped += 1
                    continue
                }
                let payload = UnsafeRawBufferPointer(quicUpstreamReceiver.payload(i))
                flow.bytesDown &+= UInt64(payload.count)
                flow.packetsDown &+= 1
                quicDownSegments.append(fd: replyFD, bytes: payload, to: flow.key.client)
            }
            counters.quicPacketsDown += n
            quicDownSegments.flush()
            if n < quicUpstreamReceiver.capacity { return }
        }
    }

    // MARK: Ending flows

    /// Releases held datagrams whose hold time passed and closes idle flows; every 100 ms.
    func sweepQUIC(now: UInt64) {
        let idle = UInt64(settings.quic.idleTimeoutMilliseconds) * 1_000_000
        for index in quicFlows.occupied {
            guard let flow = quicFlows[index] else { continue }
            // Held too long: relayed without an SNI (`decide` records it as incomplete).
            if flow.state == .sniffing && now >= flow.holdUntil { decide(flow, now: now) }
            if now &- flow.lastActive >= idle { closeFlow(index, now: now) }
        }
    }

    /// Ends a flow: logs it (unless it was logged when blocked) and closes its socket.
    func closeFlow(_ index: Int, now: UInt64) {
        guard let flow = quicFlows[index] else { return }
        if flow.state == .sniffing { decide(flow, now: now) }
        if !flow.logged { recordFlow(flow, now: now) }
        if let upstream = flow.upstream {
            epoll.remove(upstream.fd)
            upstream.close()
            flow.upstream = nil
        }
        quicIndex.removeValue(forKey: flow.key)
        quicFlows.remove(index)
        counters.quicClosed += 1
    }

    func closeAllQUIC() {
        let now = SystemInfo.monotonicNanoseconds()
        for index in quicFlows.occupied { closeFlow(index, now: now) }
    }

    static func wallMicros() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
    }
}
