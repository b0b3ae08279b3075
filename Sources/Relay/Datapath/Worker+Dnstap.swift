import DNS
import Dnstap
import LinuxNet
import Pipeline
import QueryLog
import RelayCore

/// The worker's side of dnstap: each event it is asked for (`dnstap.messages`) is copied into its
/// ring, header and DNS message, with no allocation, no lock and no clock beyond the one an answer
/// reads; the writer thread does the encoding. A full ring drops the event and counts it.
extension Worker {
    /// A client's query as it arrived (`client_query`): from the client to the address it asked.
    @inline(__always)
    func tapClientQuery(_ query: UnsafeRawBufferPointer, client: Endpoint, destination: Endpoint, tcp: Bool, receivedAt: UInt64) {
        guard let dnstap, dnstap.wants(.clientQuery) else { return }
        dnstap.push(DnstapEvent(kind: .clientQuery, transport: tcp ? .tcp : .udp, queryAddress: client, responseAddress: destination,
                                queryTime: receivedAt), message: query)
    }

    /// The answer sent to a client (`client_response`), with a policy when the relay decided it:
    /// blocked (NXDOMAIN, NODATA, or local data: a null address, REFUSED), rewritten (local data),
    /// let through by an exception rule (PASS).
    @inline(__always)
    func tapClientResponse(_ answer: UnsafeRawBufferPointer, action: QueryLogRecord.Action, rule: RuleOrigin, client: Endpoint,
                           destination: Endpoint, tcp: Bool, receivedAt: UInt64) {
        guard let dnstap, dnstap.wants(.clientResponse), answer.count >= DNSHeader.size else { return }
        let policy: DnstapMessage.Policy.Action?
        switch action {
        case .blocked:
            let base = answer.baseAddress!
            if DNSHeader.rcode(base) == .nameError {
                policy = .nxdomain
            } else if DNSHeader.rcode(base) == .noError && DNSHeader.answerCount(base) == 0 {
                policy = .nodata
            } else {
                policy = .localData
            }
        case .rewritten: policy = .localData
        case .allowed where rule.list != RuleOrigin.none.list: policy = .pass
        default: policy = nil
        }
        dnstap.push(DnstapEvent(kind: .clientResponse, transport: tcp ? .tcp : .udp, queryAddress: client, responseAddress: destination,
                                queryTime: receivedAt, responseTime: SystemInfo.monotonicNanoseconds(), policyAction: policy?.rawValue ?? 0,
                                ruleList: policy == nil ? RuleOrigin.none.list : rule.list, ruleLine: rule.line),
                    message: answer)
    }

    /// Entry `index` as just sent upstream (`forwarder_query`).
    @inline(__always)
    func tapForwarderQuery(_ index: Int, tcp: Bool, now: UInt64) {
        guard let dnstap, dnstap.wants(.forwarderQuery) else { return }
        dnstap.push(forwarderEvent(index, kind: .forwarderQuery, tcp: tcp, sentAt: now, answeredAt: 0), message: inFlight.query(index))
    }

    /// An upstream's answer to entry `index` as it arrived (`forwarder_response`), before it is
    /// checked: what the upstream said, malformed or not.
    @inline(__always)
    func tapForwarderResponse(_ index: Int, answer: UnsafeRawBufferPointer) {
        guard let dnstap, dnstap.wants(.forwarderResponse) else { return }
        let now = SystemInfo.monotonicNanoseconds()
        // Sent when its timeout was scheduled (the last send: a retry restarts it).
        let sentAt = inFlight[index].deadline &- settings.timeoutNanoseconds
        dnstap.push(forwarderEvent(index, kind: .forwarderResponse, tcp: inFlight[index].upstreamConnection >= 0, sentAt: sentAt, answeredAt: now),
                    message: answer)
    }

    /// A forwarder event: the relay's side is the client's address when the query left from it
    /// (`client_identity: source`; its port is the kernel's choice, not known here), and is left
    /// out for the shared sockets, bound to the wildcard address.
    @inline(__always)
    private func forwarderEvent(_ index: Int, kind: DnstapMessage.Kind, tcp: Bool, sentAt: UInt64, answeredAt: UInt64) -> DnstapEvent {
        let fromClient = inFlight[index].identity == .source && (tcp || inFlight[index].leftFromClient)
        return DnstapEvent(kind: kind, transport: tcp ? .tcp : .udp, queryAddress: Endpoint(address: inFlight[index].client.address, port: 0),
                           responseAddress: inFlight[index].server, queryTime: sentAt, responseTime: answeredAt, hasQueryAddress: fromClient)
    }
}
