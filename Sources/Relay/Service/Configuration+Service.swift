import Configuration
import Interception

/// What the service derives from its configuration: the nft rules to install, and a summary of
/// where queries go.
extension Configuration {
    /// The nft rules this configuration asks for.
    func interceptionPlan(ipv6: Bool) -> InterceptionPlan {
        let configuration = self
        let intercept = configuration.intercept
        var captures: [InterceptionPlan.Capture] = []
        if intercept.dns {
            captures.append(.init(.udp, port: 53, to: configuration.listen.dnsPort))
            captures.append(.init(.tcp, port: 53, to: configuration.listen.dnsPort))
        }
        if intercept.quic {
            captures.append(.init(.udp, port: 443, to: configuration.listen.quicPort))
        }
        return InterceptionPlan(tableName: intercept.table, interfaces: intercept.interfaces, mark: intercept.mark,
                                routeTable: intercept.routeTable, rulePriority: intercept.rulePriority,
                                listenV4: configuration.listen.address,
                                listenV6: ipv6 ? configuration.listen.address6 : nil, captures: captures,
                                local: intercept.local ? InterceptionPlan.Local(mark: intercept.localMark, bypassMark: intercept.bypassMark,
                                                                                bypassUsers: intercept.localBypassUsers,
                                                                                bypassGroups: intercept.localBypassGroups) : nil,
                                identity: configuration.upstream.usesSourceIdentity
                                    ? InterceptionPlan.Identity(mark: intercept.identityMark,
                                                                serverPorts: configuration.upstream.sourceAnswerPorts)
                                    : nil,
                                bypass: bypass.blockEncryptedDNS || !bypass.blockAddresses.isEmpty
                                    ? InterceptionPlan.Bypass(blockEncryptedDNS: bypass.blockEncryptedDNS, blockAddresses: !bypass.blockAddresses.isEmpty)
                                    : nil)
    }

    /// Where queries go, in words, for the start-up log line.
    var upstreamDescription: String {
        let upstream = self.upstream
        let servers: String
        switch upstream.mode {
        case .original: servers = "the address each client asked"
        case .servers: servers = upstream.servers.map(\.description).joined(separator: ", ")
        }
        switch upstream.clientIdentity {
        case .none: return servers
        case .source: return servers + " (queries leave from each client's own address)"
        case .subnet: return servers + " (queries carry the client's subnet, /\(upstream.subnetPrefixV4) and /\(upstream.subnetPrefixV6))"
        }
    }
}
