import RelayCore

/// The client names the files give (hosts files, then lease files: the first source that names
/// an address wins), immutable and swapped in whole when a file changes.
public struct ClientNameTable: Sendable {
    public enum Source: String, Sendable, CaseIterable { case hosts, leases, ptr }

    public struct Entry: Equatable, Sendable {
        public var name: String
        public var source: Source
    }

    private var byAddress: [IPAddress: Entry] = [:]
    private var byName: [String: [IPAddress]] = [:]

    public init() {}

    /// Builds the table from files' contents, in precedence order.
    public init(_ sources: [(source: Source, contents: NameFileContents)]) {
        for (source, contents) in sources {
            for (address, name) in contents.names where byAddress[address] == nil {
                byAddress[address] = Entry(name: name, source: source)
                byName[name, default: []].append(address)
            }
        }
    }

    public static let empty = ClientNameTable()

    public func entry(for address: IPAddress) -> Entry? { byAddress[address] }

    /// Every address a name is given to (a client with an IPv4 and an IPv6 lease has two).
    public func addresses(named name: String) -> [IPAddress] { byName[name] ?? [] }

    public var count: Int { byAddress.count }

    public func count(from source: Source) -> Int { byAddress.values.reduce(0) { $0 + ($1.source == source ? 1 : 0) } }

    /// All entries, for the dashboard and tests.
    public var entries: [(address: IPAddress, entry: Entry)] { byAddress.map { ($0.key, $0.value) } }
}
