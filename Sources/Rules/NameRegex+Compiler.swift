/// Compiling the parsed tree into the Pike VM's program: sets deduplicated, sizes known before
/// anything is emitted (a pattern past the bounds is refused, never half-built).
extension NameRegex {
    struct Compiler {
        var program: [Instruction] = []
        var sets: [UInt64] = []
        var setIndex: [[UInt64]: Int] = [:]

        mutating func set(_ words: [UInt64]) -> Int {
            if let index = setIndex[words] { return index }
            let index = sets.count / 4
            sets += words
            setIndex[words] = index
            return index
        }

        /// The number of instructions `emit` writes for `node`, computed once per node and
        /// capped just above `maxInstructions` (so no count overflows).
        static func size(of node: Node) -> Int {
            let cap = NameRegex.maxInstructions + 1
            switch node {
            case .empty: return 0
            case .set, .start, .end: return 1
            case .concat(let items): return min(cap, items.reduce(0) { min(cap, $0 + size(of: $1)) })
            case .alternation(let branches):
                return min(cap, branches.reduce(0) { min(cap, $0 + size(of: $1)) } + 2 * (branches.count - 1))
            case .repeated(let inner, let low, let high):
                let body = size(of: inner)
                if body == 0 { return 0 }
                let optional = high.map { ($0 - low) * (body + 1) } ?? (body + 2)
                return min(cap, body * low + optional)
            }
        }

        mutating func emit(_ node: Node) throws(Refusal) {
            // Stop early: a pattern like (((a{100}){100}){100}) must not be expanded at all.
            guard program.count <= NameRegex.maxInstructions else {
                throw Refusal(reason: "too large to match in bounded time (more than \(NameRegex.maxInstructions) steps)")
            }
            switch node {
            case .empty:
                break
            case .set(let words):
                program.append(.byte(set: set(words)))
            case .start:
                program.append(.assertStart)
            case .end:
                program.append(.assertEnd)
            case .concat(let items):
                for item in items { try emit(item) }
            case .alternation(let branches):
                // split L1, next; L1: branch; jump end; next: split ... 
                var jumps: [Int] = []
                for (i, branch) in branches.enumerated() {
                    if i < branches.count - 1 {
                        let split = program.count
                        program.append(.split(split + 1, -1))
                        try emit(branch)
                        jumps.append(program.count)
                        program.append(.jump(-1))
                        program[split] = .split(split + 1, program.count)
                    } else {
                        try emit(branch)
                    }
                }
                for j in jumps { program[j] = .jump(program.count) }
            case .repeated(let inner, let low, let high):
                // Nothing to repeat: an empty body matches the empty string however often.
                if Compiler.size(of: inner) == 0 { return }
                for _ in 0..<low { try emit(inner) }
                if let high {
                    // (inner (inner (...)?)?)? for the optional copies.
                    var splits: [Int] = []
                    for _ in low..<high {
                        splits.append(program.count)
                        program.append(.split(program.count + 1, -1))
                        try emit(inner)
                    }
                    for s in splits { program[s] = .split(s + 1, program.count) }
                } else {
                    // L: split body, end; body; jump L
                    let loop = program.count
                    program.append(.split(loop + 1, -1))
                    let bodyStart = program.count
                    try emit(inner)
                    if program.count == bodyStart {
                        // An empty body repeated: nothing to loop over.
                        program.removeLast()
                        return
                    }
                    program.append(.jump(loop))
                    program[loop] = .split(loop + 1, program.count)
                }
            }
        }
    }
}
