import Configuration
import RelayCore

/// Which upstream a query goes to: the server the client asked (`upstream.mode: original`), or
/// the configured servers in order (`servers`), unless a `server=/d/` rule chose one; and what
/// that server learns of the client (`upstream.client_identity`), which decides whose cache
/// entry its answer becomes.
public struct UpstreamChoice: Sendable {
    public typealias Identity = Configuration.ClientIdentity

    public let mode: Configuration.UpstreamMode
    public let servers: [Endpoint]
    /// Per entry of `servers`, what it learns of the client.
    public let identities: [Identity]
    /// What any other server learns (the server the client asked; a rule's server).
    public let identity: Identity
    /// The client bits an ECS option carries, per family.
    public var subnetPrefixV4: Int
    public var subnetPrefixV6: Int
    /// A query's own ECS option is kept (`keep_client_subnet`): such a query skips the cache.
    public var keepClientSubnet = false
    /// Server ports whose answers to clients' addresses the table takes in
    /// (`Configuration.Upstream.sourceAnswerPorts`); `source` to a server on another port becomes `none`.
    public var sourcePorts: [UInt16] = [53]

    public init(mode: Configuration.UpstreamMode, servers: [Endpoint], identities: [Identity]? = nil, identity: Identity = .none,
                subnetPrefixV4: Int = 24, subnetPrefixV6: Int = 56) {
        self.mode = mode
        self.servers = servers
        self.identities = identities ?? servers.map { _ in identity }
        self.identity = identity
        self.subnetPrefixV4 = subnetPrefixV4
        self.subnetPrefixV6 = subnetPrefixV6
        let all = self.identities
        narrowest = all.contains(.source) ? .source : all.contains(.subnet) ? .subnet : .none
    }

    /// The choice `upstream` describes.
    public init(_ upstream: Configuration.Upstream) {
        self.init(mode: upstream.mode, servers: upstream.servers, identities: upstream.servers.map(upstream.identity(for:)),
                  identity: upstream.clientIdentity, subnetPrefixV4: upstream.subnetPrefixV4, subnetPrefixV6: upstream.subnetPrefixV6)
        keepClientSubnet = upstream.keepClientSubnet
        sourcePorts = upstream.sourceAnswerPorts
    }

    /// The server part all answers from the configured servers share in the cache.
    public static let configuredServersKey = Endpoint(address: .anyV4, port: 0)

    /// The first try for a query from `client` to `destination`; `ruleServer` is a `server=/d/`
    /// upstream.
    @inline(__always)
    public func first(destination: Endpoint, ruleServer: Endpoint?, client: IPAddress) -> Forward {
        if let ruleServer {
            // A server=/d/ upstream: no fallback to the configured servers.
            let identity = identity(for: ruleServer)
            return Forward(server: ruleServer, serverIndex: Int(Int32.max), byRule: true,
                           cacheKey: key(ruleServer, identity, client), identity: identity)
        }
        if mode == .original {
            // Two servers may answer a name differently: the asked server is part of the key.
            let identity = identity(for: destination)
            return Forward(server: destination, serverIndex: 0, byRule: false, cacheKey: key(destination, identity, client), identity: identity)
        }
        // Any configured server may answer, after a timeout: the key is as narrow as the
        // narrowest identity among them, so that no answer reaches a client it was not for.
        return Forward(server: servers[0], serverIndex: 0, byRule: false, cacheKey: key(Self.configuredServersKey, narrowest, client),
                       identity: identities[0])
    }

    /// The server to try after the one at `index` timed out, with what it learns of the client;
    /// nil when none is left.
    @inline(__always)
    public func next(after index: Int) -> (server: Endpoint, index: Int, identity: Identity)? {
        guard mode == .servers, index + 1 < servers.count else { return nil }
        return (servers[index + 1], index + 1, identities[index + 1])
    }

    /// What `server` learns: as its entry of `servers` says, else `identity` — but never `source`
    /// for a server on a port whose answers the table would not take in (a `server=` rule target
    /// on port 5353, say): that one is asked from this host's own address.
    @inline(__always)
    public func identity(for server: Endpoint) -> Identity {
        if !servers.isEmpty, let index = servers.firstIndex(of: server) { return identities[index] }
        if identity == .source && !sourcePorts.contains(server.port) { return .none }
        return identity
    }

    /// The client bits an ECS option for `client` carries.
    @inline(__always)
    public func subnet(of client: IPAddress) -> IPPrefix {
        IPPrefix(address: client, length: client.isIPv6 ? subnetPrefixV6 : subnetPrefixV4)
    }

    /// Whose answer it is: every client's (`none`), this client's (`source`), or its subnet's,
    /// where an answer of scope 0 may be shared (`subnet`).
    @inline(__always)
    public func key(_ server: Endpoint, _ identity: Identity, _ client: IPAddress) -> CacheKey {
        switch identity {
        case .none: return CacheKey(server: server)
        case .source: return CacheKey(server: server, clients: IPPrefix(address: client, length: 128))
        case .subnet: return CacheKey(server: server, clients: subnet(of: client), allowsShared: true)
        }
    }

    /// The narrowest identity among the configured servers: source, then subnet, then none
    /// (worked out once: `servers` mode asks for it on every query).
    let narrowest: Identity
}
