import RelayCore

/// One thread's view of the client names (the query log's writer): the files' table, taken
/// again when its version changes, and reverse-lookup results kept in a bounded table of its own.
/// `name(for:)` is one dictionary lookup, skipped for a line from the same client as the last.
public struct ClientNameView {
    private let directory: ClientNameDirectory
    private var version = -1
    private var table = ClientNameTable.empty
    private enum Lookup { case pending(since: UInt32), named(String, until: UInt32), unnamed(until: UInt32) }
    private var lookups: [IPAddress: Lookup] = [:]
    /// Insertion order of `lookups`, for evicting the oldest when it is full.
    private var order: [IPAddress] = []
    private var orderStart = 0
    private var last: (address: IPAddress, name: String?)?
    /// Reverse lookups remembered (names and "no name" alike); older ones are forgotten first.
    public static let maxLookups = 4096
    /// A lookup asked for and not answered within this many seconds is asked again.
    static let retryAfter: UInt32 = 60

    public init(directory: ClientNameDirectory) {
        self.directory = directory
    }

    /// Once per batch: takes a new table and the lookups' results.
    public mutating func refresh(now: UInt32) {
        let current = directory.version
        if current != version {
            version = current
            table = directory.table
            last = nil
        }
        guard directory.reverseLookups else { return }
        for result in directory.takeResults() {
            remember(result.address, result.name.map { .named($0, until: result.expires) } ?? .unnamed(until: result.expires))
            if last?.address == result.address { last = nil }
        }
        _ = now
    }

    /// The client's name, or nil; asks for a reverse lookup of an address nothing names yet.
    public mutating func name(for address: IPAddress, now: UInt32) -> String? {
        if let last, last.address == address { return last.name }
        var name = table.entry(for: address)?.name
        if name == nil, directory.reverseLookups { name = reverse(address, now: now) }
        last = (address, name)
        return name
    }

    private mutating func reverse(_ address: IPAddress, now: UInt32) -> String? {
        switch lookups[address] {
        case .named(let name, let until) where until > now: return name
        case .unnamed(let until) where until > now: return nil
        case .pending(let since) where now &- since < Self.retryAfter: return nil
        default:
            remember(address, .pending(since: now))
            directory.ask(address)
            return nil
        }
    }

    private mutating func remember(_ address: IPAddress, _ lookup: Lookup) {
        if lookups.updateValue(lookup, forKey: address) == nil {
            order.append(address)
            while lookups.count > Self.maxLookups, orderStart < order.count {
                lookups.removeValue(forKey: order[orderStart])
                orderStart += 1
            }
            if orderStart > Self.maxLookups {  // compact the order list now and then
                order.removeFirst(orderStart)
                orderStart = 0
            }
        }
    }

    /// Lookups remembered (for tests: bounded whatever the flood).
    public var rememberedLookups: Int { lookups.count }
}
