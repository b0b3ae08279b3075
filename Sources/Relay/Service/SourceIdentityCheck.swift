import Configuration
import Interception
import RelayCore

/// What `check` says about `upstream.client_identity: source`: queries that leave from a
/// client's address are answered to that address, and the answer reaches this host only where
/// the upstream's route back to the client passes through it. The kernel's route to each server
/// tells the cases apart (docs/DESIGN.md, "The upstream sees the client").
public enum SourceIdentityCheck {
    public struct Note: Equatable, Sendable {
        /// A setup where `source` cannot work, rather than one that depends on other routers.
        public var isWarning: Bool
        public var text: String
    }

    /// One note per server that sends from clients' addresses; `route` is the kernel's route
    /// lookup (`RouteLookup.route(to:)`), given as a parameter so that tests can pose any network.
    public static func notes(_ configuration: Configuration, route: (IPAddress) -> RouteLookup?) -> [Note] {
        let upstream = configuration.upstream
        guard upstream.usesSourceIdentity else { return [] }
        var notes: [Note] = []
        if upstream.mode == .original && upstream.clientIdentity == .source {
            notes.append(Note(isWarning: false, text: "upstream.client_identity: source with mode original: each query goes to the server its client asked, and its answer reaches this host only if that server routes the clients' addresses back through it (a resolver on the LAN side, behind NAT, or on the internet does not)"))
        }
        let captured = Set(configuration.intercept.interfaces)
        for server in upstream.servers where upstream.identity(for: server) == .source {
            guard let found = route(server.address) else {
                notes.append(Note(isWarning: true, text: "upstream \(server): no route to it"))
                continue
            }
            if captured.contains(found.interface) {
                notes.append(Note(isWarning: true, text: "upstream \(server) is reached through \(found.interface), an intercepted interface: it answers a client's address directly on that network, not through this host, so client_identity: source cannot work for it (use subnet)"))
            } else if let gateway = found.gateway {
                notes.append(Note(isWarning: false, text: "upstream \(server) is not on a directly connected network (next hop \(gateway) on \(found.interface)): answers to clients' addresses come back only if every router on the way sends the LAN's prefixes to this host, with no NAT"))
            } else {
                notes.append(Note(isWarning: false, text: "upstream \(server) is directly connected on \(found.interface): its answers to clients' addresses come back through this host if its route to the LAN's prefixes points here"))
            }
        }
        return notes
    }
}
