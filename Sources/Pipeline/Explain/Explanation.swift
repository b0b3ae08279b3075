import Configuration
import DNS
import RelayCore
import Rules

/// `tproxy-relay explain`: the pipeline's own decision for a name, stage by stage, with every
/// rule that matched. The verdict is the datapath's by construction: it is `QueryPipeline.decide`
/// run on a query built from the name, with a trace.
public struct Explanation {
    /// What the pipeline decided.
    public var outcome: QueryOutcome
    /// What each stage saw, in order.
    public var steps: [PipelineTrace.Step]
    /// Every rule that matched the name, strongest first (the deciding one first).
    public var matches: [Rule]
    /// The answer the relay would send itself, when it answers (its rcode and record count).
    public var answer: (rcode: ResponseCode, records: Int)?
    /// What the rule stage decided, when it was reached.
    public var ruleMatch: RuleSet.Match?
    private let rules: RuleStage
    /// The name an alias asks for instead (a `$dnsrewrite` CNAME sent upstream).
    public var aliasTarget: String?
    private let blockWith: Configuration.BlockResponse

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case invalidName(String)
        public var description: String {
            switch self {
            case .invalidName(let name): return "'\(name)' is not a valid domain name"
            }
        }
    }

    /// Explains a query for `name` of `type` from `client` (nil: no client; `$client` rules do
    /// not apply) to `destination` (the address the client asked) over `transport`; `now` is the
    /// cache's clock (seconds; a fresh pipeline's cache is empty whatever it is).
    public init(pipeline: QueryPipeline, name: String, type: UInt16, client: IPAddress?, destination: Endpoint,
                transport: Transport = .udp, now: UInt32 = 0) throws(Failure) {
        guard let wire = QueryBuilder.query(name: name, type: type, id: 0x5353, ednsPayloadSize: 1232),
              case .query(let query) = wire.withUnsafeBytes({ QueryParser.classify($0) })
        else { throw .invalidName(name) }
        var facts = QueryFacts(query: query, client: Endpoint(address: client ?? .anyV4, port: 0), destination: destination, transport: transport)
        facts.ruleClient = client
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 8)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: wire)
        let trace = PipelineTrace()
        outcome = pipeline.decide(facts, in: buffer, queryLength: wire.count, now: now, trace: trace)
        steps = trace.steps
        ruleMatch = trace.ruleMatch
        if case .forward(let forward, _) = outcome { aliasTarget = pipeline.aliasTarget(forward) }
        rules = pipeline.rules
        blockWith = pipeline.answers.blockWith
        if case .answered(let length, _, _, _) = outcome, length >= DNSHeader.size {
            let answerBytes = UnsafeRawBufferPointer(rebasing: buffer[0..<length])
            answer = (DNSHeader.rcode(answerBytes.baseAddress!), Int(DNSHeader.answerCount(answerBytes.baseAddress!)))
        }
        let ruleNames = pipeline.rules
        matches = ruleNames.rules.isEmpty ? []
            : ruleNames.rules.explain(name: name, type: type, client: client, lists: ruleNames.lists(for: client)).matches
    }

    /// One line for the verdict, as `explain` prints it first.
    public var verdict: String {
        let code = answer.map { " (\($0.rcode), \($0.records) answer record\($0.records == 1 ? "" : "s"))" } ?? ""
        switch outcome {
        case .answered(_, let source, _, _):
            switch source {
            case .refusedLoop: return "refused: addressed to the relay itself, forwarding would loop" + code
            case .zone: return "answered from a local zone, authoritatively; rules are not asked" + code
            case .blocked: return "blocked (answered with \(blockWith))" + code
            case .rewritten:
                if case .rewrite(let address)? = ruleMatch?.verdict { return "rewritten to \(address)" + code }
                if case .dnsRewrite(let rewrite)? = ruleMatch?.verdict { return "$dnsrewrite answers \(rewrite)" + code }
                return "rewritten" + code
            case .rewrittenToZone:
                if case .dnsRewrite(let rewrite)? = ruleMatch?.verdict { return "$dnsrewrite answers \(rewrite), the target answered from a local zone" + code }
                return "rewritten to an alias in a local zone" + code
            case .cached: return "answered from the cache" + code
            case .bypassed(let builtin):
                return "\(QueryPipeline.describe(builtin)): answered by the relay (bypass.\(builtin.key)); rules are not asked" + code
            }
        case .forward(let forward, _):
            if forward.aliasRule != nil, let target = aliasTarget { return "$dnsrewrite answers CNAME \(target), the target asked upstream" }
            let exception = ruleMatch?.rule.map { rules.rules.rule(at: $0).action == .allow } ?? false
            return "allowed (\(exception ? "an exception won" : "no blocking rule matched")), forwarded to " + QueryPipeline.describeServer(forward.server)
        }
    }
}
