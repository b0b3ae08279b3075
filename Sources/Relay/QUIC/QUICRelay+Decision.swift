import Glibc
import LinuxNet
import Pipeline
import QUIC
import RelayCore
import Rules

/// What the rules make of a QUIC flow: its SNI is read from the Initial packets, then the flow
/// is relayed or blocked.
extension QUICRelay {
    /// Whether the rules block a QUIC flow to `name`, and the rule that decided. The SNI meets
    /// the same rule stage as a DNS query for the name (type A or AAAA by the flow's family).
    private func rulesBlock(_ name: String, flow: QUICFlow) -> (blocked: Bool, rule: RuleOrigin?) {
        var bytes = Array(name.utf8)
        let match = bytes.withUnsafeMutableBytes { buffer in
            rules.match(name: UnsafeRawBufferPointer(buffer), type: flow.key.destination.address.isIPv6 ? 28 : 1, client: flow.key.client.address)
        }
        return (RuleStage.blocksQUIC(match.verdict), match.rule == nil ? nil : rules.origin(of: match))
    }

    /// Applies the rules to the flow's SNI (or relays it without one) and releases or drops
    /// what was held.
    func decide(_ flow: QUICFlow, now: UInt64) {
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
        if let upstream = flow.upstream {
            for datagram in flow.held {
                let sent = datagram.withUnsafeBytes { (try? upstream.send($0)) ?? nil }
                if sent == nil { counters.quicDropped += 1; continue }
                flow.bytesUp &+= UInt64(datagram.count)
                flow.packetsUp &+= 1
                counters.quicPacketsUp += 1
            }
        }
        flow.held = []
        recordFlow(flow, now: now)
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
        recordFlow(flow, now: now)
    }

    /// Reads an Initial that arrives on a flow already relaying: a client may open a second
    /// connection on the same addresses, or send junk first so that the flow was decided without
    /// an SNI. A ClientHello read this way meets the rules like the first; true when it is
    /// blocked (the datagram carrying it, and all after it, are dropped). Costs nothing for
    /// datagrams that are not Initials, which after the handshake's first round trip is all.
    func sniffLate(_ flow: QUICFlow, _ payload: UnsafeRawBufferPointer, now: UInt64) -> Bool {
        if flow.lateSniffer == nil { flow.lateSniffer = InitialSniffer(maxDatagrams: max(1, settings.holdDatagrams)) }
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
}
