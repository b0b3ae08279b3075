import Configuration
import DNS
import RelayCore
import Rules
import Zones

/// What happens to one query, decided in one place for UDP, TCP and `explain`: the loop guard,
/// the bypass answers, local zones, the rules, the cache, the choice of upstream, in that order
/// (docs/DESIGN.md).
///
/// No sockets: the datapath hands it a parsed query in a writable buffer and acts on the outcome
/// (send the answer, or send upstream); `explain` hands it a query it built and prints the trace.
/// Each worker holds its own pipeline (its scratch space and counts are its own); the rules and
/// zones in it are shared read-only, the answer cache behind its shards' locks. A reload makes a
/// new pipeline around the same cache (`replacing`): every stage is a constant, so a query reads them in place, with no copy and no
/// reference counting. Nothing is allocated on the way to a forward, a cache hit or a block; a
/// zone answer or an alias allocates.
public final class QueryPipeline {
    public let loopGuard: LoopGuard
    public let bypass: BypassStage
    public let zones: ZoneStage
    public let rules: RuleStage
    public let answers: RuleAnswers
    public let cache: CacheStage
    public let upstream: UpstreamChoice
    /// Where the query's name is spelled out once for every stage (256 bytes, allocated once).
    public let name: NameScratch

    public init(loopGuard: LoopGuard, bypass: BypassStage, zones: ZoneStage, rules: RuleStage, answers: RuleAnswers, cache: CacheStage,
                upstream: UpstreamChoice, name: NameScratch = NameScratch()) {
        self.loopGuard = loopGuard
        self.bypass = bypass
        self.zones = zones
        self.rules = rules
        self.answers = answers
        self.cache = cache
        self.upstream = upstream
        self.name = name
    }

    /// The same pipeline (the same cache, counters and scratch space) with new rules or zones.
    public func replacing(rules newRules: RuleSet? = nil, zones newZones: LocalZones? = nil, policy newPolicy: ClientPolicy? = nil) -> QueryPipeline {
        QueryPipeline(loopGuard: loopGuard, bypass: bypass,
                      zones: newZones.map { ZoneStage(zones: $0, aliasTTL: zones.aliasTTL) } ?? zones,
                      rules: RuleStage(rules: newRules ?? rules.rules, policy: newPolicy ?? rules.policy),
                      answers: answers, cache: cache, upstream: upstream, name: name)
    }

    /// The answer cache's settings as the configuration gives them.
    public static func cacheSettings(_ c: Configuration.Cache) -> AnswerCache.Settings {
        AnswerCache.Settings(entries: c.entries, minTTL: c.minTTL, maxTTL: c.maxTTL, negativeTTL: c.negativeTTL,
                             serveStaleSeconds: c.serveStale, prefetch: c.prefetch)
    }

    /// A pipeline as the configuration describes it, with these rules, zones and listeners, over
    /// `cache` (the one the workers share; nil: a cache of its own, as `explain` has).
    /// `policy`: `filters.clients` with client names resolved (nil: the configuration's
    /// addresses and prefixes alone).
    public convenience init(configuration: Configuration, rules: RuleSet, zones: LocalZones, listeners: [Endpoint],
                            cache: SharedAnswerCache? = nil, policy: ClientPolicy? = nil) {
        self.init(loopGuard: LoopGuard(listeners: listeners),
                  bypass: BypassStage(configuration.bypass),
                  zones: ZoneStage(zones: zones, aliasTTL: configuration.filters.ttl),
                  rules: RuleStage(rules: rules, policy: policy ?? configuration.filters.clientPolicy()),
                  answers: RuleAnswers(blockWith: configuration.filters.blockWith, ttl: configuration.filters.ttl),
                  cache: CacheStage(shared: cache ?? SharedAnswerCache(settings: Self.cacheSettings(configuration.cache))),
                  upstream: UpstreamChoice(configuration.upstream))
    }

    /// Decides the query held in the first `queryLength` bytes of `buffer`. An answer the relay
    /// makes is written over the query in `buffer` (which has room for at least 4 KiB), cut to
    /// the client's size with TC=1. `now` is the worker's clock in seconds (cache TTLs).
    @inline(__always)
    public func decide(_ facts: QueryFacts, in buffer: UnsafeMutableRawBufferPointer, queryLength: Int, now: UInt32,
                       trace: PipelineTrace? = nil) -> QueryOutcome {
        let query = facts.query
        let limit = facts.answerLimit

        // 1. A query to the relay itself.
        if loopGuard.isLoop(facts.destination) {
            trace?.note("loop", "\(facts.destination) is the relay's own listener: refused (forwarding would loop)")
            let length = ResponseBuilder.answer(rcode: .refused, in: buffer, questionEnd: query.questionEnd, withOPT: query.hasEDNS)
            return .answered(length: length, source: .refusedLoop, rule: .none, detail: .plain)
        }
        // 2. The known ways around the filter (DDR, Firefox's canary, Private Relay).
        if let (builtin, answer) = bypass.match(question: UnsafeRawBufferPointer(rebasing: buffer[DNSHeader.size..<query.questionEnd]),
                                                type: query.type) {
            trace?.note("bypass", "\(Self.describe(builtin)): answered \(answer == .nodata ? "NODATA" : "NXDOMAIN") (bypass.\(builtin.key))")
            let length = ResponseBuilder.answer(rcode: answer == .nodata ? .noError : .nameError, in: buffer, questionEnd: query.questionEnd,
                                                withOPT: query.hasEDNS)
            return .answered(length: length, source: .bypassed(builtin), rule: RuleOrigin(builtin), detail: .plain)
        }
        trace?.note("bypass", "not a bypass name (DDR, Firefox canary, Private Relay)")
        var rule = RuleOrigin.none
        var ruleServer: Endpoint?
        var hints: SVCBHints.Keys = []
        if zones.zones.isEmpty && rules.rules.isEmpty {
            // Nothing asks for the name: it is not spelled out.
            trace?.note("zones", "no local zones")
            trace?.note("rules", "no rules loaded")
        } else {
            guard let nameLength = DomainName.fromWire(UnsafeRawBufferPointer(rebasing: buffer[0..<queryLength]), into: name.bytes) else {
                // The parser accepted the question, so this cannot happen; forward rather than guess.
                return .forward(upstream.first(destination: facts.destination, ruleServer: nil, client: facts.client.address), rule: .none)
            }
            let qname = UnsafeRawBufferPointer(rebasing: name.bytes[0..<nameLength])

            // 3. Local zones.
            if let (length, zone) = zones.answer(name: qname, query: query, in: buffer, limit: limit) {
                trace?.note("zones", "local zone \(zone) answers (authoritative); rules, cache and upstream are not asked")
                return .answered(length: length, source: .zone, rule: .none, detail: .plain)
            }
            trace?.note("zones", zones.zones.isEmpty ? "no local zones" : "no local zone holds the name")

            // 4. The rules: a selector, then the answer its verdict calls for.
            let match = rules.match(name: qname, type: query.type, client: facts.ruleClient)
            rule = rules.origin(of: match)
            trace?.ruleMatch = match
            trace?.note("rules", Self.describe(match.verdict, rule: rule, rules: rules.rules))
            switch match.verdict {
            case .pass:
                ruleServer = match.upstream
                if (query.type == 64 || query.type == 65) && rules.rules.hasTypeConditions {
                    hints = hintsToStrip(name: qname, client: facts.ruleClient)
                    if !hints.isEmpty {
                        trace?.note("rules", "the name's \(hints == [.ipv4, .ipv6] ? "A and AAAA are" : hints == .ipv4 ? "A is" : "AAAA is") answered by the rules: "
                                    + "that address hint is taken out of the HTTPS answer (not cached)")
                    }
                }
            case .block:
                return .answered(length: answers.block(query, in: buffer), source: .blocked, rule: rule, detail: .plain)
            case .rewrite(let address):
                return .answered(length: answers.address(address, query, in: buffer), source: .rewritten, rule: rule, detail: .plain)
            case .dnsRewrite(.rcode(let code)) where code != 0:
                return .answered(length: answers.rcode(code, query, in: buffer), source: .rewritten, rule: rule, detail: .plain)
            case .dnsRewrite(.cname(let target)):
                if let length = zones.aliasAnswer(target: target, query: query, in: buffer, limit: limit) {
                    trace?.note("zones", "the alias target \(target) is in a local zone: answered with the CNAME and the zone's records")
                    return .answered(length: length, source: .rewrittenToZone, rule: rule, detail: .plain)
                }
                var forward = upstream.first(destination: facts.destination, ruleServer: nil, client: facts.client.address)
                forward.aliasRule = match.rule
                forward.cacheable = false
                trace?.note("upstream", "asks \(Self.describeServer(forward.server)) for the alias target \(target) (not cached: the answer depends on the rule)")
                return .forward(forward, rule: rule)
            case .dnsRewrite:
                let length = answers.records(name: qname, rules: rules.rules, client: facts.ruleClient, lists: rules.lists(for: facts.ruleClient),
                                             query, in: buffer, limit: limit)
                return .answered(length: length, source: .rewritten, rule: rule, detail: .plain)
            }
        }

        // 5. The cache.
        var forward = upstream.first(destination: facts.destination, ruleServer: ruleServer, client: facts.client.address)
        if !hints.isEmpty {
            // The answer is edited for this client's rules: neither taken from nor put in the cache.
            forward.stripHints = hints.rawValue
            forward.cacheable = false
            trace?.note("upstream", "forwarded to " + Self.describeServer(forward.server))
            return .forward(forward, rule: rule)
        }
        if forward.identity == .subnet && upstream.keepClientSubnet
            && ClientSubnet.carried(in: UnsafeRawBufferPointer(rebasing: buffer[0..<queryLength]), questionEnd: query.questionEnd) {
            // Its answer is for the subnet the client named, which no cache entry is keyed by.
            forward.cacheable = false
            trace?.note("cache", "not consulted: the query carries its own ECS option, which is kept (upstream.keep_client_subnet)")
            trace?.note("upstream", "forwarded to " + Self.describeServer(forward.server) + " with the client's own ECS option")
            return .forward(forward, rule: rule)
        }
        if let hit = cache.lookup(buffer, queryLength: queryLength, query: query, key: forward.cacheKey, limit: limit, now: now) {
            trace?.note("cache", "a fresh answer is cached: answered from the cache")
            return .answered(length: hit.length, source: .cached, rule: rule,
                             detail: AnswerDetail(truncated: hit.truncated, prefetch: hit.prefetch ? forward : nil))
        }
        trace?.note("cache", cache.isEnabled ? "consulted (key: \(Self.describeKey(forward.cacheKey))); a fresh answer would be given from it"
                                             : "off (cache.entries: 0)")

        // 6. Upstream.
        trace?.note("upstream", "forwarded to " + Self.describeServer(forward.server)
                                    + (forward.byRule ? " (chosen by the rule, no fallback)"
                                       : upstream.mode == .original && !forward.server.address.isUnspecified ? " (the server the client asked)" : "")
                                    + Self.describeIdentity(forward, client: facts.ruleClient, upstream: upstream))
        return .forward(forward, rule: rule)
    }

    /// For an SVCB/HTTPS query that passed: the address hints whose type the rules answer
    /// themselves for this name (blocked, rewritten), which the upstream's answer must not carry.
    func hintsToStrip(name: UnsafeRawBufferPointer, client: IPAddress?) -> SVCBHints.Keys {
        var keys: SVCBHints.Keys = []
        if rules.match(name: name, type: 1, client: client).verdict != .pass { keys.insert(.ipv4) }
        if rules.match(name: name, type: 28, client: client).verdict != .pass { keys.insert(.ipv6) }
        return keys
    }

    /// The name a `$dnsrewrite` alias asks for instead, for a forward that carries one.
    public func aliasTarget(_ forward: Forward) -> String? {
        forward.aliasRule.flatMap { rules.rules.aliasTarget(of: $0) }
    }

    static func describe(_ builtin: BuiltinRule) -> String {
        switch builtin {
        case .ddr: return "DDR discovery of an encrypted resolver (RFC 9462)"
        case .firefoxCanary: return "Firefox's canary domain (DoH stays off)"
        case .privateRelay: return "iCloud Private Relay (Apple devices then use this network's DNS)"
        }
    }

    static func describe(_ verdict: RuleSet.Match.Verdict, rule: RuleOrigin, rules: RuleSet) -> String {
        switch verdict {
        case .pass where rule == .none: return rules.isEmpty ? "no rules loaded" : "no rule matched"
        case .pass: return "an exception or upstream rule matched: passed"
        case .block: return "blocked"
        case .rewrite(let address): return "rewritten to \(address)"
        case .dnsRewrite(let rewrite): return "$dnsrewrite answers \(rewrite)"
        }
    }

    /// A server for `explain`: the unspecified address stands for "whatever the client asked".
    static func describeServer(_ server: Endpoint) -> String {
        server.address.isUnspecified ? "the server the client asked" : "\(server)"
    }

    static func describeKey(_ key: CacheKey) -> String {
        let server = key.server == UpstreamChoice.configuredServersKey ? "the configured servers" : describeServer(key.server)
        if key.isShared { return server }
        return server + ", for \(key.clients)" + (key.allowsShared ? " (or for every client, when the answer's ECS scope is 0)" : " only")
    }

    /// What the upstream learns of the client, for `explain`.
    /// `client` is nil in `explain` without `--client`.
    static func describeIdentity(_ forward: Forward, client: IPAddress?, upstream: UpstreamChoice) -> String {
        switch (forward.identity, client) {
        case (.none, _): return ""
        case (.source, let client?): return "; the query leaves from the client's own address \(client)"
        case (.source, nil): return "; the query leaves from the client's own address"
        case (.subnet, let client?): return "; the query carries ECS \(upstream.subnet(of: client))"
        case (.subnet, nil): return "; the query carries ECS with the client's subnet"
        }
    }
}

/// 256 bytes where a query's name is spelled out, allocated once per pipeline.
public final class NameScratch {
    public let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
    public init() {}
    deinit { bytes.deallocate() }
}
