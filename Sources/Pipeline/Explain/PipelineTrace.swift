import Rules

/// What each stage of the pipeline saw and did for one query, in order: `explain` prints it.
/// The datapath passes no trace (nil), which costs a nil check per stage.
public final class PipelineTrace {
    public struct Step: Equatable, Sendable {
        /// The stage: loop, zones, rules, cache, upstream.
        public var stage: String
        /// What it found, in a sentence.
        public var result: String
    }

    public private(set) var steps: [Step] = []
    /// What the rule stage decided, when it was reached.
    public internal(set) var ruleMatch: RuleSet.Match?

    public init() {}

    @inline(__always)
    func note(_ stage: String, _ result: @autoclosure () -> String) {
        steps.append(Step(stage: stage, result: result()))
    }
}
