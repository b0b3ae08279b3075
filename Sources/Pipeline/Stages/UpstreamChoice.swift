import Configuration
import RelayCore

/// Which upstream a query goes to: the server the client asked (`upstream.mode: original`), or
/// the configured servers in order (`servers`), unless a `server=/d/` rule chose one.
public struct UpstreamChoice: Sendable {
    public var mode: Configuration.UpstreamMode
    public var servers: [Endpoint]

    public init(mode: Configuration.UpstreamMode, servers: [Endpoint]) {
        self.mode = mode
        self.servers = servers
    }

    /// The key all answers from the configured servers share in the cache.
    public static let configuredServersKey = Endpoint(address: .anyV4, port: 0)

    /// The first try for a query to `destination`; `ruleServer` is a `server=/d/` upstream.
    @inline(__always)
    public func first(destination: Endpoint, ruleServer: Endpoint?) -> Forward {
        if let ruleServer {
            // A server=/d/ upstream: no fallback to the configured servers.
            return Forward(server: ruleServer, serverIndex: Int(Int32.max), byRule: true, cacheKey: ruleServer)
        }
        if mode == .original {
            // Two servers may answer a name differently: the asked server is part of the key.
            return Forward(server: destination, serverIndex: 0, byRule: false, cacheKey: destination)
        }
        return Forward(server: servers[0], serverIndex: 0, byRule: false, cacheKey: Self.configuredServersKey)
    }

    /// The server to try after the one at `index` timed out, or nil when none is left.
    @inline(__always)
    public func next(after index: Int) -> (server: Endpoint, index: Int)? {
        guard mode == .servers, index + 1 < servers.count else { return nil }
        return (servers[index + 1], index + 1)
    }
}
