import RelayCore

/// `filters.clients`: which lists apply to which clients. The most specific block that holds
/// the client wins (a /32 beats a /24); a client no block holds gets every list.
public struct ClientPolicy: Equatable, Sendable {
    /// Blocks with the lists they get, most specific first.
    public private(set) var entries: [(prefix: IPPrefix, lists: ListMask)]

    public init(_ entries: [(prefix: IPPrefix, lists: ListMask)] = []) {
        // Stable: among equally specific blocks the one written first wins.
        self.entries = entries.enumerated().sorted { ($0.element.prefix.length, -$0.offset) > ($1.element.prefix.length, -$1.offset) }.map(\.element)
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// The lists that apply to `client`.
    @inline(__always)
    public func lists(for client: IPAddress) -> ListMask {
        for entry in entries where entry.prefix.contains(client) { return entry.lists }
        return .all
    }

    public static func == (a: ClientPolicy, b: ClientPolicy) -> Bool {
        a.entries.map(\.prefix) == b.entries.map(\.prefix) && a.entries.map(\.lists) == b.entries.map(\.lists)
    }
}
