/// Answers the relay gives by itself, not by a line of a list: the known ways devices find an
/// encrypted resolver and leave the filter (`bypass:` in the configuration, docs/BYPASS.md). The
/// query log shows them like rules, from the list `bypass` with the rule's code as its line.
public enum BuiltinRule: UInt32, CaseIterable, Sendable {
    /// DDR (RFC 9462): `_dns.resolver.arpa`, and `_dns.<name>` SVCB (RFC 9461), answered NODATA.
    case ddr = 1
    /// Firefox's canary domain `use-application-dns.net`: NXDOMAIN keeps DoH off by default.
    case firefoxCanary = 2
    /// iCloud Private Relay's `mask.icloud.com` and `mask-h2.icloud.com`: NXDOMAIN makes Apple
    /// devices use the network's DNS.
    case privateRelay = 3

    /// The list index these carry in the query log record (a real list never reaches it).
    public static let list: UInt16 = .max - 1
    /// The list's name in the query log.
    public static let listName = "bypass"

    /// The configuration key that turns it off, as the query log and `explain` show it.
    public var key: String {
        switch self {
        case .ddr: return "ddr"
        case .firefoxCanary: return "firefox_canary"
        case .privateRelay: return "private_relay"
        }
    }
}
