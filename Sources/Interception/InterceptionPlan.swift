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

    public init(tableName: String, interfaces: [String], mark: UInt32, routeTable: UInt32, rulePriority: UInt32,
                listenV4: IPAddress, listenV6: IPAddress?, captures: [Capture]) {
        self.tableName = tableName
        self.interfaces = interfaces
        self.mark = mark
        self.routeTable = routeTable
        self.rulePriority = rulePriority
        self.listenV4 = listenV4
        self.listenV6 = listenV6
        self.captures = captures
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
        return out
    }
}
