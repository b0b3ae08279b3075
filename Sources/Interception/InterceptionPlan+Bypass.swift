/// Closing the ways around the filter in the relay's own table (docs/BYPASS.md): encrypted DNS
/// on port 853 (DoT over TCP, DoQ over UDP) from the captured interfaces, and HTTPS/DoT/DoQ to
/// known DoH server addresses (`bypass.block_addresses`, an interval set per family filled from
/// files and replaced whole on reload). TCP is rejected with a reset and UDP to blocked addresses
/// with an ICMP port unreachable, in a forward chain, so a client gives up at once instead of
/// waiting; UDP 443 to a blocked address first skips the QUIC capture in prerouting (`accept`
/// ends the relay's chain), so that it reaches the forward chain. UDP 853 is dropped (DoQ).
/// Each closing rule counts into a named counter the relay reads back.
extension InterceptionPlan {
    public struct Bypass: Equatable, Sendable {
        public var blockEncryptedDNS: Bool
        public var blockAddresses: Bool

        public init(blockEncryptedDNS: Bool, blockAddresses: Bool) {
            self.blockEncryptedDNS = blockEncryptedDNS
            self.blockAddresses = blockAddresses
        }
    }

    /// One rule: `iifname I [meta nfproto F] meta l4proto P th dport D [ip(6) daddr @set]
    /// [counter name C] (drop | reject with tcp reset | reject | accept)`.
    public struct BypassRule: Equatable, Sendable {
        public enum Chain: Equatable, Sendable { case prerouting, forward }
        public enum Destination: Equatable, Sendable { case any, blockedV4, blockedV6 }
        public var chain: Chain
        public var interface: String
        public var transport: Capture.TransportProtocol
        public var port: UInt16
        public var destination: Destination
        /// The named counter it counts into; nil for `skipCapture` (its forward rule counts).
        public var counter: String?
        public var verdict: Verdict

        public enum Verdict: Equatable, Sendable {
            case drop
            /// `reject with tcp reset` (TCP, forward chain).
            case reset
            /// `reject` with ICMP(v6) port unreachable (UDP, forward chain).
            case unreachable
            /// `accept` in prerouting: past the capture rules, on to the forward chain.
            case skipCapture
        }
    }

    public static let encryptedDNSCounter = "encrypted_dns"
    public static let blockedAddressesCounter = "blocked_addresses"
    public static let blockedSetV4 = "blocked_v4"
    public static let blockedSetV6 = "blocked_v6"
    /// The ports closed to the addresses of `block_addresses`: HTTPS (DoH, also over QUIC) and 853.
    public static let blockedAddressPorts: [UInt16] = [443, 853]

    /// The rules, prerouting ones first (they go before the capture rules).
    public var bypassRules: [BypassRule] {
        guard let bypass else { return [] }
        var out: [BypassRule] = []
        for interface in interfaces {
            if bypass.blockAddresses {
                for destination in [BypassRule.Destination.blockedV4, .blockedV6] {
                    for port in Self.blockedAddressPorts {
                        if captures.contains(where: { $0.transport == .udp && $0.port == port }) {
                            out.append(BypassRule(chain: .prerouting, interface: interface, transport: .udp, port: port, destination: destination,
                                                  counter: nil, verdict: .skipCapture))
                        }
                        out.append(BypassRule(chain: .forward, interface: interface, transport: .udp, port: port, destination: destination,
                                              counter: Self.blockedAddressesCounter, verdict: .unreachable))
                        out.append(BypassRule(chain: .forward, interface: interface, transport: .tcp, port: port, destination: destination,
                                              counter: Self.blockedAddressesCounter, verdict: .reset))
                    }
                }
            }
            if bypass.blockEncryptedDNS {
                out.append(BypassRule(chain: .prerouting, interface: interface, transport: .udp, port: 853, destination: .any,
                                      counter: Self.encryptedDNSCounter, verdict: .drop))
                out.append(BypassRule(chain: .forward, interface: interface, transport: .tcp, port: 853, destination: .any,
                                      counter: Self.encryptedDNSCounter, verdict: .reset))
            }
        }
        return out.filter { $0.chain == .prerouting } + out.filter { $0.chain == .forward }
    }

    /// The named counters the rules count into.
    public var bypassCounters: [String] {
        guard let bypass else { return [] }
        return (bypass.blockEncryptedDNS ? [Self.encryptedDNSCounter] : []) + (bypass.blockAddresses ? [Self.blockedAddressesCounter] : [])
    }
}
