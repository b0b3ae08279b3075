import RelayCore
import Rules
import Testing

/// `filters.clients` once many single addresses are hashed rather than scanned: the answer must
/// be the scan's, entry for entry (the most specific block, the first written among equals).
@Suite struct ClientPolicyTests {
    typealias Entry = (prefix: IPPrefix, lists: ListMask)

    /// The rule as written: the most specific entry holding the client, the first written among
    /// equally specific ones; every list when none holds it.
    static func byScanning(_ entries: [Entry], _ client: IPAddress) -> ListMask {
        var best: Entry?
        for entry in entries where entry.prefix.contains(client) {
            if best == nil || entry.prefix.length > best!.prefix.length { best = entry }
        }
        return best?.lists ?? .all
    }

    static func v4(_ n: Int) -> IPAddress { IPAddress("10.53.\(n >> 8 & 0xFF).\(n & 0xFF)")! }

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let entries: [String]
        let client: String
        let lists: [Int]?  // nil: every list
        var testDescription: String { name }
    }

    /// Twelve single addresses (more than are scanned) ahead of the case's own entries, so every
    /// case runs against the hashed form.
    static let filler = (100..<112).map { "10.99.0.\($0)" }

    static let cases: [Case] = [
        Case(name: "a named address beats its block", entries: ["10.53.1.0/24", "10.53.1.7"], client: "10.53.1.7", lists: [13]),
        Case(name: "another address of the block gets the block", entries: ["10.53.1.0/24", "10.53.1.7"], client: "10.53.1.8", lists: [12]),
        Case(name: "the same address twice: the first written", entries: ["10.53.1.7", "10.53.1.7"], client: "10.53.1.7", lists: [12]),
        Case(name: "an IPv6 address is hashed too", entries: ["fd53:1::/64", "fd53:1::9"], client: "fd53:1::9", lists: [13]),
        Case(name: "families never meet (a mapped address is not the IPv4 one)", entries: ["10.53.1.7"], client: "::ffff:10.53.1.7", lists: nil),
        Case(name: "outside everything: every list", entries: ["10.53.1.0/24"], client: "172.16.0.1", lists: nil),
        Case(name: "a /0 holds whoever no other entry holds", entries: ["0.0.0.0/0", "10.53.1.7"], client: "10.53.2.2", lists: [12]),
        Case(name: "the narrower of two blocks", entries: ["10.53.0.0/16", "10.53.1.0/24"], client: "10.53.1.200", lists: [13]),
    ]

    @Test(arguments: cases)
    func answersAsTheScanWould(_ c: Case) throws {
        let written = Self.filler.map { "\($0)/32" } + c.entries
        let entries: [Entry] = written.enumerated().map { (IPPrefix($0.element)!, ListMask(lists: [$0.offset])) }
        let client = try #require(IPAddress(c.client))
        let expected = c.lists.map { ListMask(lists: $0) } ?? .all
        #expect(ClientPolicy(entries).lists(for: client) == expected)
        #expect(Self.byScanning(entries, client) == expected, "the case itself is wrong")
    }

    /// Many policies of named addresses, blocks and duplicates, small and large (scanned and
    /// hashed), against the scan for clients inside and outside them.
    @Test func everyPolicyAnswersAsTheScan() {
        var random = SystemRandomNumberGenerator()
        for round in 0..<200 {
            let count = round % 40
            var entries: [Entry] = []
            for i in 0..<count {
                let prefix: IPPrefix
                switch Int.random(in: 0..<6, using: &random) {
                case 0: prefix = IPPrefix(address: Self.v4(Int.random(in: 0..<512, using: &random)), length: [16, 20, 24, 28][i % 4])
                case 1: prefix = IPPrefix("fd53:1::\(String(Int.random(in: 0..<64, using: &random), radix: 16))")!
                default: prefix = IPPrefix(address: Self.v4(Int.random(in: 0..<512, using: &random)), length: 32)
                }
                entries.append((prefix, ListMask(lists: [i % 64])))
            }
            let policy = ClientPolicy(entries)
            for n in 0..<600 {
                let client = n % 7 == 0 ? IPAddress("fd53:1::\(String(n % 64, radix: 16))")! : Self.v4(n)
                // The whole policy in the message: the entries are random, a failure must be reproducible.
                #expect(policy.lists(for: client) == Self.byScanning(entries, client),
                        "client \(client), round \(round), policy \(entries.map { "\($0.prefix)=\($0.lists.bits)" })")
            }
        }
    }
}
