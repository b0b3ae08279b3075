import RelayCore

/// What one line of a rule file is.
public enum ParsedLine: Equatable, Sendable {
    /// A blank line, a comment or a list header.
    case comment
    /// One or more rules (a hosts line may name several hosts).
    case rules([ParsedRule])
    /// Valid for browsers but meaningless for DNS (cosmetic, URL-path rules): counted, with why.
    case ignored(String)
    /// Not a rule we can read: reported with file:line and why.
    case rejected(String)
}

/// A rule as read from its line, before compilation.
public struct ParsedRule: Equatable, Sendable {
    public enum Pattern: Equatable, Sendable {
        case domain(String, DomainScope)
        case regex(String)
    }

    public var pattern: Pattern
    public var action: RuleAction
    public var important = false
    /// `$dnstype`, `$denyallow`, `$client`.
    public var conditions = RuleConditions()
    /// `$badfilter`: this rule disables the rule with the same text minus this modifier.
    public var badfilter = false
    /// What `$badfilter` matches against: the rule's text without `$badfilter`.
    public var key = ""

    public init(_ pattern: Pattern, _ action: RuleAction) {
        self.pattern = pattern
        self.action = action
    }
}

/// Reads one line of any supported format. The format is decided per line, so mixed files work:
/// hosts (`0.0.0.0 a b`), plain domains, wildcards (`*.d`), adblock/AdGuard DNS syntax (`||d^`,
/// `|d^`, `@@`, `/regex/`, modifiers), dnsmasq (`address=/d/…`, `local=/d/`) and Unbound
/// (`local-zone: "d." always_null`). Semantics follow AdGuard Home's (docs/FILTERING.md).
public enum LineParser {
    /// Modifiers split at commas that are not escaped (`\,`).
    static func splitModifiers(_ text: Substring) -> [Substring] {
        var out: [Substring] = []
        var start = text.startIndex
        var i = text.startIndex
        var escaped = false
        while i < text.endIndex {
            let c = text[i]
            if c == "," && !escaped {
                if start < i { out.append(text[start..<i]) }
                start = text.index(after: i)
            }
            escaped = c == "\\" && !escaped
            i = text.index(after: i)
        }
        if start < text.endIndex { out.append(text[start...]) }
        return out
    }

    public static func parse(_ raw: Substring) -> ParsedLine {
        let line = raw.trimmingWhitespace()
        guard let first = line.first else { return .comment }
        if first == "!" || (first == "#" && !line.hasPrefix("##") && !line.hasPrefix("#@#")) { return .comment }
        if first == "[" && line.hasSuffix("]") { return .comment }  // [Adblock Plus 2.0]
        if line == "server:" { return .comment }  // Unbound section header

        if line.contains("##") || line.contains("#@#") || line.contains("#$#") || line.contains("#?#") || line.contains("#%#") {
            return .ignored("cosmetic rule: hides page elements, nothing DNS can do")
        }
        if line.hasPrefix("@@") { return adblock(line.dropFirst(2), exception: true) }
        if line.hasPrefix("||") || line.hasPrefix("|") || line.hasPrefix("/") { return adblock(line, exception: false) }
        if line.hasPrefix("address=/") || line.hasPrefix("local=/") || line.hasPrefix("server=/") { return dnsmasq(line) }
        if line.hasPrefix("local-zone:") { return unbound(line) }
        if line.contains("$") || line.contains("^") { return adblock(line, exception: false) }
        if line.contains("://") || line.contains("/") { return .ignored("URL rule: DNS sees host names, not URLs") }

        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        if fields.count >= 2 || IPAddress(String(fields[0])) != nil { return hosts(fields) }
        return domain(fields[0])
    }

    // MARK: Formats

    /// Hosts: an address, then names, maybe a `#` comment. A null or loopback address blocks;
    /// any other is a local answer (rewrite). Names match exactly.
    private static func hosts(_ fields: [Substring]) -> ParsedLine {
        // An IPv6 address may carry a zone (`fe80::1%lo0 localhost`, in many hosts files): the
        // zone names an interface of the machine that wrote the file, so it is dropped.
        let text = fields[0].contains(":") ? fields[0].prefix { $0 != "%" } : fields[0]
        guard let address = IPAddress(String(text)) else {
            return .rejected("'\(fields[0])' is not an IP address (hosts lines start with one)")
        }
        var rules: [ParsedRule] = []
        for field in fields.dropFirst() {
            if field.hasPrefix("#") { break }
            if hostsSelfNames.contains(field.lowercased()) { continue }
            guard let name = DomainName.normalize(field) else { return .rejected("'\(field)' is not a host name") }
            let action: RuleAction = isNullOrLoopback(address) ? .block : .rewrite(address)
            rules.append(ParsedRule(.domain(name, .exact), action))
        }
        if rules.isEmpty {
            return fields.count == 1 ? .rejected("an address without a host name") : .ignored("hosts entry for the machine itself (localhost and the like)")
        }
        return .rules(rules)
    }

    /// Names every hosts file carries for the machine itself; blocking them would break it.
    static let hostsSelfNames: Set<String> = ["localhost", "localhost.localdomain", "local", "broadcasthost", "ip6-localhost",
                                              "ip6-loopback", "ip6-localnet", "ip6-mcastprefix", "ip6-allnodes", "ip6-allrouters",
                                              "ip6-allhosts", "0.0.0.0"]

    static func isNullOrLoopback(_ address: IPAddress) -> Bool {
        switch address {
        case .v4(let a): return a.rawValue == 0 || a.octets[0] == 127
        case .v6(let a): return (a.high == 0 && a.low == 0) || (a.high == 0 && a.low == UInt64(1).bigEndian)
        }
    }

    /// A plain name (exactly that name) or a wildcard `*.name` / `.name` (names below it).
    private static func domain(_ field: Substring) -> ParsedLine {
        var text = field
        var scope = DomainScope.exact
        if text.hasPrefix("*.") {
            text = text.dropFirst(2)
            scope = .below
        } else if text.hasPrefix(".") {
            text = text.dropFirst()
            scope = .below
        }
        if text.contains("*") { return .rejected("a wildcard is only understood as a leading '*.'; use ||…^ or /regex/ for more") }
        guard let name = DomainName.normalize(text) else { return .rejected("'\(field)' is not a host name") }
        return .rules([ParsedRule(.domain(name, scope), .block)])
    }

    /// dnsmasq: `address=/d/#`, `address=/d/0.0.0.0` or `::` block d and below; another address
    /// is a local answer; `local=/d/` and `server=/d/` block (NXDOMAIN); `server=/d/IP[#port]`
    /// forwards d and below to that server, `server=/d/#` to the configured upstream.
    private static func dnsmasq(_ line: Substring) -> ParsedLine {
        let parts = line.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return .rejected("expected address=/name/answer") }
        let names = parts[1..<(parts.count - 1)].filter { !$0.isEmpty }
        let answer = parts[parts.count - 1].trimmingWhitespace()
        guard !names.isEmpty else { return .rejected("no domain between the slashes") }
        let action: RuleAction
        if parts[0] == "server=" && !answer.isEmpty {
            // server=/d/IP[#port]: a per-domain upstream; server=/d/# the configured one.
            if answer == "#" {
                action = .forward(nil)
            } else {
                let pieces = answer.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
                let port = pieces.count == 2 ? UInt16(pieces[1]) : 53
                guard !answer.contains("@"), let address = IPAddress(String(pieces[0])), let port, port != 0 else {
                    return .rejected("'\(answer)' is not an upstream address (IP or IP#port; @interface is not supported)")
                }
                let server = Endpoint(address: address, port: port)
                action = .forward(server)
            }
        } else if parts[0] == "local=" || parts[0] == "server=" || answer.isEmpty || answer == "#" {
            // local=/d/ and server=/d/ (nothing after the slash) mean "answer locally only".
            action = .block
        } else if let address = IPAddress(String(answer)) {
            action = isNullOrLoopback(address) ? .block : .rewrite(address)
        } else {
            return .rejected("'\(answer)' is not an address, # or empty")
        }
        var rules: [ParsedRule] = []
        for n in names {
            guard let name = DomainName.normalize(n) else { return .rejected("'\(n)' is not a host name") }
            rules.append(ParsedRule(.domain(name, .subtree), action))
        }
        return .rules(rules)
    }

    /// Unbound: `local-zone: "d." TYPE`: always_null, always_nxdomain, always_refuse, refuse and
    /// static block d and below; transparent and the like are not blocks and are ignored.
    private static func unbound(_ line: Substring) -> ParsedLine {
        let rest = line.dropFirst("local-zone:".count).trimmingWhitespace()
        let fields = rest.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard fields.count >= 2 else { return .rejected("expected local-zone: \"name.\" type") }
        let quoted = fields[0]
        guard quoted.count >= 2, quoted.first == "\"", quoted.last == "\"" else { return .rejected("the zone name must be quoted") }
        guard let name = DomainName.normalize(quoted.dropFirst().dropLast()) else { return .rejected("'\(quoted)' is not a domain") }
        switch fields[1] {
        case "always_null", "always_nxdomain", "always_refuse", "refuse", "static", "deny", "inform_deny":
            return .rules([ParsedRule(.domain(name, .subtree), .block)])
        case "transparent", "typetransparent", "redirect", "inform", "always_transparent", "nodefault":
            return .ignored("local-zone type \(fields[1]) does not block")
        default:
            return .rejected("unknown local-zone type '\(fields[1])'")
        }
    }

    /// Adblock/AdGuard DNS syntax.
    private static func adblock(_ body: Substring, exception: Bool) -> ParsedLine {
        var pattern = body
        var modifiers: Substring = ""
        // Modifiers follow the last '$' (a regex may contain '$' itself, so only after its closing '/').
        if let dollar = body.lastIndex(of: "$"), !(body.hasPrefix("/") && body[dollar...].contains("/")) {
            pattern = body[..<dollar]
            modifiers = body[body.index(after: dollar)...]
        }
        var rule: ParsedRule
        if pattern.hasPrefix("/") && pattern.dropFirst().firstIndex(of: "/") == nil {
            return .rejected("a regular expression needs a closing '/'")
        }
        if pattern.hasPrefix("/") && pattern.hasSuffix("/") && pattern.count > 2 {
            let source = String(pattern.dropFirst().dropLast())
            do throws(NameRegex.Refusal) { _ = try NameRegex(source) } catch {
                return .rejected("invalid regular expression /\(source)/: \(error.reason)")
            }
            rule = ParsedRule(.regex(source), exception ? .allow : .block)
        } else {
            var text = pattern
            var scope = DomainScope.exact
            if text.hasPrefix("||") {
                text = text.dropFirst(2)
                scope = .subtree
            } else if text.hasPrefix("|") {
                text = text.dropFirst()
            } else if text.hasPrefix("*.") {
                text = text.dropFirst(2)
                scope = .below
            } else if text.hasPrefix(".") {
                text = text.dropFirst()
                scope = .below
            }
            if text.hasSuffix("^|") { text = text.dropLast(2) } else if text.hasSuffix("^") || text.hasSuffix("|") { text = text.dropLast() }
            if text.contains("/") || text.contains(":") { return .ignored("URL rule: DNS sees host names, not URLs") }
            if text.contains("*") || text.contains("^") {
                // A wildcard inside the name: compile it to a regular expression over the name.
                let escaped = text.map { c -> String in
                    switch c {
                    case "*": return "[a-z0-9._-]*"
                    case "^": return "(\\.|$)"
                    case ".": return "\\."
                    default: return String(c).lowercased()
                    }
                }.joined()
                let prefix = scope == .subtree ? "(^|\\.)" : "^"
                rule = ParsedRule(.regex(prefix + escaped + "$"), exception ? .allow : .block)
            } else {
                guard let name = DomainName.normalize(text) else { return .rejected("'\(text)' is not a host name") }
                rule = ParsedRule(.domain(name, scope), exception ? .allow : .block)
            }
        }
        var keyModifiers: [Substring] = []
        for escaped in Self.splitModifiers(modifiers) {
            // AdGuard's syntax: a comma inside a value is written `\,` (HTTPS alpn=h3\,h2).
            let modifier = escaped.contains("\\") ? Substring(String(escaped).split(separator: "\\,", omittingEmptySubsequences: false).joined(separator: ",")) : escaped
            let (name, value) = split(modifier)
            switch name {
            case "important": rule.important = true
            case "badfilter": rule.badfilter = true; continue
            case "dnstype":
                let entries = value.split(separator: "|")
                let negated = entries.allSatisfy { $0.hasPrefix("~") }
                guard !entries.isEmpty, negated || entries.allSatisfy({ !$0.hasPrefix("~") }) else {
                    return .rejected("$dnstype mixes listed and excluded (~) types")
                }
                for entry in entries {
                    let typeName = String(entry.drop(while: { $0 == "~" }))
                    guard let type = RecordType.number(typeName) else { return .rejected("unknown record type '\(typeName)' in $dnstype") }
                    rule.conditions.types.append(type)
                }
                rule.conditions.excludesTypes = negated
            case "denyallow":
                for entry in value.split(separator: "|") {
                    guard let name = DomainName.normalize(entry) else { return .rejected("'\(entry)' in $denyallow is not a domain") }
                    rule.conditions.denyAllow.append(name)
                }
            case "match-case":
                break  // DNS names are compared without case anyway
            case "client":
                for entry in value.split(separator: "|") {
                    let excluded = entry.hasPrefix("~")
                    let text = excluded ? entry.dropFirst() : entry
                    guard let prefix = IPPrefix(String(text)) else {
                        if text.hasPrefix("'") || text.hasPrefix("\"") || IPAddress(String(text)) == nil && !text.contains("/") {
                            return .rejected("$client=\(text): the relay knows clients by address; use an address or a CIDR")
                        }
                        return .rejected("'\(text)' in $client is not an address or CIDR")
                    }
                    if excluded { rule.conditions.excludedClients.append(prefix) } else { rule.conditions.clients.append(prefix) }
                }
                guard !rule.conditions.clients.isEmpty || !rule.conditions.excludedClients.isEmpty else { return .rejected("$client needs at least one address") }
            case "dnsrewrite":
                if exception {
                    if value.isEmpty {
                        rule.action = .cancelDNSRewrite(nil)
                    } else {
                        switch DNSRewrite.parse(value) {
                        case .success(let rewrite): rule.action = .cancelDNSRewrite(rewrite)
                        case .failure(let error): return .rejected(error.reason)
                        }
                    }
                } else {
                    guard !value.isEmpty else { return .rejected("$dnsrewrite needs a value (a response code, an address or a host name)") }
                    switch DNSRewrite.parse(value) {
                    case .success(let rewrite): rule.action = .dnsRewrite(rewrite)
                    case .failure(let error): return .rejected(error.reason)
                    }
                }
            case "ctag":
                return .rejected("$ctag needs client tags, which the relay does not have; use $client with addresses")
            case "third-party", "3p", "first-party", "1p", "script", "image", "stylesheet", "domain", "popup", "xmlhttprequest", "subdocument", "media", "font", "websocket", "other", "ping", "object", "document", "all":
                return .ignored("$\(name) applies to web requests, not DNS")
            default:
                return .rejected("unknown modifier $\(name)")
            }
            keyModifiers.append(modifier)
        }
        rule.key = (exception ? "@@" : "") + String(pattern) + (keyModifiers.isEmpty ? "" : "$" + keyModifiers.sorted().joined(separator: ","))
        return .rules([rule])
    }

    private static func split(_ modifier: Substring) -> (Substring, Substring) {
        guard let equals = modifier.firstIndex(of: "=") else { return (modifier, "") }
        return (modifier[..<equals], modifier[modifier.index(after: equals)...])
    }
}

/// Record type names used in `$dnstype` and on the command line.
public enum RecordType {
    static let names: [String: UInt16] = [
        "A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33,
        "NAPTR": 35, "DS": 43, "RRSIG": 46, "NSEC": 47, "DNSKEY": 48, "TLSA": 52, "SVCB": 64, "HTTPS": 65, "CAA": 257, "ANY": 255,
    ]

    /// The number of a type name (`AAAA`, `https`, `TYPE65`), or nil.
    public static func number(_ name: String) -> UInt16? {
        let upper = name.uppercased()
        if let n = names[upper] { return n }
        if upper.hasPrefix("TYPE"), let n = UInt16(upper.dropFirst(4)) { return n }
        return nil
    }

    public static func name(_ number: UInt16) -> String {
        names.first { $0.value == number }?.key ?? "TYPE\(number)"
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> SubSequence {
        var s = self[...]
        while let c = s.first, c == " " || c == "\t" || c == "\r" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\r" { s = s.dropLast() }
        return s
    }
}
