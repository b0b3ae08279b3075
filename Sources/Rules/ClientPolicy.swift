import RelayCore

/// `filters.clients`: which lists apply to which clients. The most specific block that holds
/// the client wins (a /32 beats a /24); a client no block holds gets every list.
///
/// Asked once per query. Past a few, single addresses (a /32 or /128: every address a client
/// name resolves to) are found by hashing, so a policy naming hundreds of devices costs a client
/// what one naming a few does; only the wider blocks are scanned, most specific first
/// (`rules-bench policy N`: 256 named addresses had cost a client outside them 0.5 µs a query
/// by scanning, 1,024 about 2 µs; hashed, 25–40 ns whatever N).
public struct ClientPolicy: Equatable, Sendable {
    /// Blocks with the lists they get, most specific first.
    public private(set) var entries: [(prefix: IPPrefix, lists: ListMask)]
    /// The entries of one address each; among equal ones the first written.
    private let hosts: [IPAddress: ListMask]
    /// The other entries, most specific first.
    private let blocks: [(prefix: IPPrefix, lists: ListMask)]

    public init(_ entries: [(prefix: IPPrefix, lists: ListMask)] = []) {
        // Stable: among equally specific blocks the one written first wins.
        let sorted = entries.enumerated().sorted { ($0.element.prefix.length, -$0.offset) > ($1.element.prefix.length, -$1.offset) }.map(\.element)
        self.entries = sorted
        var hosts: [IPAddress: ListMask] = [:]
        var blocks: [(prefix: IPPrefix, lists: ListMask)] = []
        let single = { (entry: (prefix: IPPrefix, lists: ListMask)) in entry.prefix.length == (entry.prefix.address.isIPv6 ? 128 : 32) }
        let hashing = sorted.count(where: single) > Self.scannedHostsAtMost
        for entry in sorted {
            if hashing && single(entry) {
                if hosts[entry.prefix.address] == nil { hosts[entry.prefix.address] = entry.lists }
            } else {
                blocks.append(entry)
            }
        }
        self.hosts = hosts
        self.blocks = blocks
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// Up to this many single addresses are scanned with the blocks (about 2 ns each, less than
    /// a hash of the client's address).
    static let scannedHostsAtMost = 8

    /// The lists that apply to `client`.
    @inline(__always)
    public func lists(for client: IPAddress) -> ListMask {
        // A single address is the most specific entry there can be.
        if !hosts.isEmpty, let lists = hosts[client] { return lists }
        for entry in blocks where entry.prefix.contains(client) { return entry.lists }
        return .all
    }

    public static func == (a: ClientPolicy, b: ClientPolicy) -> Bool {
        a.entries.map(\.prefix) == b.entries.map(\.prefix) && a.entries.map(\.lists) == b.entries.map(\.lists)
    }
}
