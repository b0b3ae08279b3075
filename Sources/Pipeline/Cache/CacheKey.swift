import RelayCore

/// Whose answer a cache entry holds, besides its question: the server part (the server the
/// client asked in `original` mode, or all configured servers), and the clients the answer may
/// be given to. An answer obtained with one client's identity (`upstream.client_identity`) is
/// never given to a client outside it (docs/DESIGN.md, "The upstream sees the client").
public struct CacheKey: Hashable, Sendable {
    public var server: Endpoint
    /// 0.0.0.0/0 for every client; the client's own /32 or /128 (`source`: the upstream saw its
    /// address); its subnet (`subnet`: the upstream saw that, and the answer's scope allows it).
    public var clients: IPPrefix

    /// A subnet key whose lookups may also take an answer kept for every client (`subnet`: an
    /// answer of ECS scope 0 is valid for all, RFC 7871 §7.3). Never for `source`: an upstream
    /// that sees addresses says nothing about which of its answers depend on them.
    public var allowsShared: Bool

    public init(server: Endpoint, clients: IPPrefix = CacheKey.everyone, allowsShared: Bool = false) {
        self.server = server
        self.clients = clients
        self.allowsShared = allowsShared && clients.length > 0
    }

    /// The prefix that stands for every client.
    public static let everyone = IPPrefix(address: .anyV4, length: 0)

    /// The same server part, for every client (an answer whose ECS scope is 0).
    public var shared: CacheKey { CacheKey(server: server) }

    public var isShared: Bool { clients.length == 0 }

    /// Whose answer it is: the server part and the clients (`allowsShared` is how to look, not whose).
    public static func == (a: CacheKey, b: CacheKey) -> Bool { a.server == b.server && a.clients == b.clients }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(server)
        hasher.combine(clients)
    }
}
