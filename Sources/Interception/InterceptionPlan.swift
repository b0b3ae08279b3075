import RelayCore

/// What to capture and where to deliver it: the input to the nft table and the policy routes.
/// A plain value, built from the configuration, so that the rules are testable without a kernel.
public struct InterceptionPlan: Equatable, Sendable {
    /// The nft table's name (family inet).
    public var tableName: String
    /// Capture what arrives on these interfaces.
    public var interfaces: [String]
    /// The fwmark tproxy sets; `ip rule fwmark mark lookup routeTable` sends it to the local stack.
    public var mark: UInt32
    public var routeTable: UInt32
    /// Priority of the `ip rule` (explicit, so re-adding never stacks duplicates).
    public var rulePriority: UInt32
    /// Where IPv4 traffic is delivered (the relay's transparent listeners).
    public var listenV4: IPAddress
    /// Where IPv6 traffic is delivered; nil when the relay runs without IPv6.
    public var listenV6: IPAddress?
    /// Which destination ports of which protocol go to which listener port.
    public var captures: [Capture]
    /// The host's own traffic (`intercept.local`), or nil when only what arrives is captured.
    public var local: Local?
    /// Answers to the relay's sockets bound to clients' addresses (`upstream.client_identity:
    /// source`), or nil when no query leaves from a client's address.
    public var identity: Identity?
    /// The ways around the filter closed in the table (`bypass.block_encrypted_dns`,
    /// `block_addresses`; InterceptionPlan+Bypass.swift), or nil.
    public var bypass: Bypass?

    public init(tableName: String, interfaces: [String], mark: UInt32, routeTable: UInt32, rulePriority: UInt32,
                listenV4: IPAddress, listenV6: IPAddress?, captures: [Capture], local: Local? = nil, identity: Identity? = nil,
                bypass: Bypass? = nil) {
        self.tableName = tableName
        self.interfaces = interfaces
        self.mark = mark
        self.routeTable = routeTable
        self.rulePriority = rulePriority
        self.listenV4 = listenV4
        self.listenV6 = listenV6
        self.captures = captures
        self.local = local
        self.identity = identity
        self.bypass = bypass
    }

    /// Taking in the answers to queries that left from clients' addresses: they are addressed to
    /// a client, so without a rule they would be forwarded to the LAN. A prerouting rule marks
    /// those that belong to one of the relay's transparent sockets (`socket transparent 1`), and
    /// the policy route (`fwmark mark lookup routeTable`) delivers them here.
    public struct Identity: Equatable, Sendable {
        /// The mark set on them (not `mark`: PolicyRouting explains why).
        public var mark: UInt32
        /// The source ports upstream answers come from (53, and the configured servers' ports):
        /// only those packets cost a socket lookup, not every forwarded packet.
        public var serverPorts: [UInt16]

        public init(mark: UInt32, serverPorts: [UInt16]) {
            self.mark = mark
            self.serverPorts = serverPorts
        }
    }

    /// One rule that marks answers to the relay's client-address sockets:
    /// `meta l4proto P th sport S th dport != C… socket transparent 1 meta mark set M`. The
    /// captured ports are excluded: a query to a captured port could otherwise find a reply
    /// socket (transparent, bound to the server address the client asked) and be taken away
    /// from the listener.
    public struct IdentityRule: Equatable, Sendable {
        public var transport: Capture.TransportProtocol
        public var serverPort: UInt16
        public var excludedPorts: [UInt16]
        public var mark: UInt32
    }

    /// The identity rules, one per transport and server port; empty without `identity`.
    public var identityRules: [IdentityRule] {
        guard let identity else { return [] }
        var out: [IdentityRule] = []
        for transport in [Capture.TransportProtocol.udp, .tcp] {
            let excluded = captures.filter { $0.transport == transport }.map(\.port)
            for port in identity.serverPorts {
                out.append(IdentityRule(transport: transport, serverPort: port, excludedPorts: excluded, mark: identity.mark))
            }
        }
        return out
    }

    /// Capturing what this host sends itself: an output chain marks it (`mark`), the policy
    /// route sends it to `lo`, and a prerouting rule for `lo` hands it to the listener.
    public struct Local: Equatable, Sendable {
        /// The mark the output chain sets (not `mark`: see PolicyRouting).
        public var mark: UInt32
        /// The relay's own sockets carry it: never captured again.
        public var bypassMark: UInt32
        /// Sockets of these users and groups go out directly (a local resolver's upstream queries).
        public var bypassUsers: [UInt32]
        public var bypassGroups: [UInt32]

        public init(mark: UInt32, bypassMark: UInt32, bypassUsers: [UInt32] = [], bypassGroups: [UInt32] = []) {
            self.mark = mark
            self.bypassMark = bypassMark
            self.bypassUsers = bypassUsers
            self.bypassGroups = bypassGroups
        }
    }

    /// One rule of the output chain, in order: the returns first, then the marks.
    public enum OutputRule: Equatable, Sendable {
        /// `meta mark M return`: the relay's own packets.
        case returnIfMarked(UInt32)
        /// `fib daddr type local return`: to this host itself (a resolver on 127.0.0.1 or a LAN address).
        case returnIfLocalDestination
        /// `meta skuid U return`, `meta skgid G return`.
        case returnIfUser(UInt32)
        case returnIfGroup(UInt32)
        /// `[meta nfproto ipv4] meta l4proto P th dport D meta mark set M`.
        case mark(Capture.TransportProtocol, port: UInt16, ipv4Only: Bool, mark: UInt32)
    }

    /// The output chain's rules; empty without `local`.
    public var outputRules: [OutputRule] {
        guard let local else { return [] }
        var out: [OutputRule] = [.returnIfMarked(local.bypassMark), .returnIfLocalDestination]
        out += local.bypassUsers.map { .returnIfUser($0) }
        out += local.bypassGroups.map { .returnIfGroup($0) }
        // Without an IPv6 listener, IPv6 is left alone: marked, it would go to lo with no taker.
        out += captures.map { .mark($0.transport, port: $0.port, ipv4Only: listenV6 == nil, mark: local.mark) }
        return out
    }

    /// One kind of traffic to divert: `proto dport port → listener port`.
    public struct Capture: Equatable, Sendable {
        public enum TransportProtocol: UInt8, Sendable { case udp = 17, tcp = 6 }
        public var transport: TransportProtocol
        public var port: UInt16
        public var listenPort: UInt16

        public init(_ transport: TransportProtocol, port: UInt16, to listenPort: UInt16) {
            self.transport = transport
            self.port = port
            self.listenPort = listenPort
        }
    }

    /// One nft rule: `iifname I meta nfproto F meta l4proto P th dport D tproxy F to A:L meta mark set M`.
    public struct Rule: Equatable, Sendable {
        public var interface: String
        public var transport: Capture.TransportProtocol
        public var port: UInt16
        public var target: Endpoint
        public var mark: UInt32
        /// Only packets already carrying this mark (the host's own, rerouted to `lo`).
        public var requiredMark: UInt32?
    }

    /// Every rule of the prerouting chain, in order: per interface, per family, per capture.
    public var rules: [Rule] {
        var out: [Rule] = []
        for interface in interfaces {
            for address in [listenV4] + (listenV6.map { [$0] } ?? []) {
                for capture in captures {
                    out.append(Rule(interface: interface, transport: capture.transport, port: capture.port,
                                    target: Endpoint(address: address, port: capture.listenPort), mark: mark))
                }
            }
        }
        if let local {
            for address in [listenV4] + (listenV6.map { [$0] } ?? []) {
                for capture in captures {
                    out.append(Rule(interface: "lo", transport: capture.transport, port: capture.port,
                                    target: Endpoint(address: address, port: capture.listenPort), mark: local.mark, requiredMark: local.mark))
                }
            }
        }
        return out
    }
}
