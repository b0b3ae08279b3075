import ClientNames
import RelayCore

/// Where client names come from (`clients.names`; docs/QUERYLOG.md, "Client names").
extension Configuration {
    public struct Clients: Equatable, Sendable {
        public init() {}

        public var names = NameSources()
    }

    /// Each source optional; earlier sources win for an address: hosts files, then lease files,
    /// then reverse lookups.
    public struct NameSources: Equatable, Sendable {
        public init() {}

        /// Files in hosts format (`10.53.1.2 kids-ipad`).
        public var hosts: [String] = []
        /// DHCP lease files: dnsmasq, ISC dhcpd (`dhcpd.leases`) or Kea (CSV), told apart by content.
        public var leases: [String] = []
        /// The resolver asked for PTR names of clients no file names; nil: no reverse lookups.
        public var ptr: Endpoint?
        /// Reverse lookups sent per second at most (the rest wait, or are dropped past the queue).
        public var ptrQueriesPerSecond = 10
        /// How long a PTR answer is kept (the TTL, at most this), and how long a missing one is.
        public var ptrTTL = 3_600
        public var ptrNegativeTTL = 600

        public var isEmpty: Bool { hosts.isEmpty && leases.isEmpty && ptr == nil }
    }
}

extension Configuration.ClientLists {
    /// A `match` entry that names a client rather than an address: letters, digits, `-`, `_`
    /// and dots, with at least one letter (so that a mistyped address is never taken for a name).
    public static func clientName(_ text: String) -> String? {
        guard !text.hasSuffix("."), let name = ClientNameText.normalize(text),
              name.utf8.contains(where: { $0 >= 0x61 && $0 <= 0x7a }) else { return nil }
        return name
    }
}
