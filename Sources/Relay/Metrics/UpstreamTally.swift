import RelayCore

/// Tries, answers, timeouts and mismatched datagrams per upstream, kept by one worker. The
/// series are bounded by the configuration: one per configured server, plus `addressed` (in
/// `original` mode every address a client asked is a server, and they are not bounded: they
/// are counted together) and `rule` (`server=/d/` targets, which come from the lists).
struct UpstreamTally: Sendable {
    enum Kind: Int, CaseIterable { case queries, answers, timeouts, mismatches }
    /// `Kind.allCases.count`, as a constant (`allCases` builds an array).
    static let kinds = 4

    /// The label of each series, in order: the configured servers, `addressed`, `rule`.
    let labels: [String]
    private let servers: [Endpoint]
    private let serversMode: Bool
    /// `labels.count × kinds`, allocated once.
    private(set) var counts: [Int]

    init(servers: [Endpoint], serversMode: Bool) {
        self.servers = serversMode ? servers : []
        self.serversMode = serversMode
        labels = self.servers.map(\.description) + ["addressed", "rule"]
        counts = Array(repeating: 0, count: labels.count * Self.kinds)
    }

    var addressedSlot: Int { servers.count }
    var ruleSlot: Int { servers.count + 1 }

    /// The series of an in-flight entry's server: its index among the configured servers, or a
    /// `server=/d/` target (`Int32.max`, UpstreamChoice), or an address a client asked.
    @inline(__always)
    func slot(serverIndex: Int) -> Int {
        if serverIndex == Int(Int32.max) { return ruleSlot }
        return serversMode && serverIndex < servers.count ? serverIndex : addressedSlot
    }

    /// The series of a datagram's source, for answers that matched nothing.
    @inline(__always)
    func slot(source: Endpoint) -> Int {
        for i in 0..<servers.count where servers[i] == source { return i }
        return addressedSlot
    }

    @inline(__always)
    mutating func count(_ kind: Kind, slot: Int) {
        counts[slot * Self.kinds + kind.rawValue] += 1
    }

    func value(_ kind: Kind, slot: Int) -> Int { counts[slot * Self.kinds + kind.rawValue] }

    /// A copy with its own storage, for publishing (the worker's array then stays unshared and
    /// is never copied on the query path).
    func detached() -> UpstreamTally {
        var copy = self
        copy.counts = counts.map { $0 }
        return copy
    }

    static func + (a: UpstreamTally, b: UpstreamTally) -> UpstreamTally {
        var c = a.detached()
        for i in c.counts.indices where i < b.counts.count { c.counts[i] += b.counts[i] }
        return c
    }
}
