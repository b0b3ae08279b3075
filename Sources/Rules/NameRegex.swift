/// A regular expression over domain names that matches in time linear in the name: a Thompson
/// NFA run as a Pike VM (every possible thread advanced in step, at most one per instruction),
/// never backtracking.
///
/// Why not Swift's `Regex`: it backtracks, and a list line such as `/^(a+)+$/` with one query
/// for `aaaa…ab.example` held a worker at 100 % for more than 40 s (issue 13, finding 5). Here a
/// match costs at most (name length + 1) × (program size) steps, and both are bounded: names by
/// DNS (≤ 253 bytes), programs by `maxInstructions`, so the worst query costs a fraction of a
/// millisecond whatever the list says.
///
/// The syntax is what block lists use (AdGuard Home, Pi-hole): literals, `.`, classes `[a-z0-9]`
/// and `[^…]`, escapes `\d \w \s \D \W \S` and escaped punctuation, groups `(…)` and `(?:…)`,
/// `|`, the quantifiers `* + ? {n} {n,} {n,m}` (lazy forms accepted: for match-or-not they mean
/// the same), and the anchors `^ $`. Backreferences and lookaround cannot be matched in linear
/// time and are refused with a reason, as are patterns whose program would be too large.
/// Matching ignores ASCII case; the search is unanchored unless `^`/`$` say otherwise.
public struct NameRegex: Sendable {
    /// The largest program accepted (instructions): with names of at most 253 bytes, about
    /// 250,000 thread steps in the worst case.
    public static let maxInstructions = 1000
    /// The longest pattern accepted, and the deepest nesting of groups.
    public static let maxPatternLength = 1024
    static let maxDepth = 32
    /// The largest count in `{n,m}`.
    static let maxRepeat = 100

    enum Instruction: Equatable, Sendable {
        /// Consume one byte that is in the set (index into `sets`).
        case byte(set: Int)
        /// Continue at both targets.
        case split(Int, Int)
        case jump(Int)
        case assertStart
        case assertEnd
        case match
    }

    let program: [Instruction]
    /// 256-bit byte sets, four words each.
    let sets: [UInt64]
    public let source: String

    /// Why a pattern was refused.
    public struct Refusal: Error, Equatable, Sendable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// Compiles `source`; throws a `Refusal` saying what is wrong or unsupported.
    public init(_ source: String) throws(Refusal) {
        let bytes = Array(source.utf8)
        guard bytes.count <= Self.maxPatternLength else {
            throw Refusal(reason: "longer than \(Self.maxPatternLength) characters")
        }
        var parser = Parser(bytes: bytes)
        let tree = try parser.parseAlternation(depth: 0)
        guard parser.position == bytes.count else {
            throw Refusal(reason: "unbalanced ')' at character \(parser.position + 1)")
        }
        // The program's size is known before anything is emitted (found by the `rules` fuzz
        // target: `()+++…` expanded an empty body 2^n times without the program growing).
        let size = Compiler.size(of: tree)
        guard size < Self.maxInstructions else {
            throw Refusal(reason: "too large to match in bounded time (more than \(Self.maxInstructions) steps)")
        }
        var compiler = Compiler()
        try compiler.emit(tree)
        compiler.program.append(.match)
        guard compiler.program.count <= Self.maxInstructions else {
            throw Refusal(reason: "too large to match in bounded time (\(compiler.program.count) steps; at most \(Self.maxInstructions))")
        }
        program = compiler.program
        sets = compiler.sets
        self.source = source
    }

    // MARK: Matching

    /// Whether the pattern matches anywhere in `name` (ASCII case ignored). Allocates nothing on
    /// the heap: the thread lists live on the stack for the call.
    public func matches(_ name: UnsafeRawBufferPointer) -> Bool {
        let size = program.count
        return withUnsafeTemporaryAllocation(of: Int32.self, capacity: 3 * size + 2) { scratch in
            let base = scratch.baseAddress!
            var current = base            // threads to run at this position
            var next = base + size        // threads for the next position
            let seen = base + 2 * size    // per instruction: the last step that added it
            for i in 0..<size { seen[i] = -1 }
            var currentCount = 0
            var nextCount = 0
            var step: Int32 = 0
            let length = name.count

            // Adds instruction `pc` and what it reaches without consuming a byte, at `position`.
            func add(_ pc: Int, to list: UnsafeMutablePointer<Int32>, count: inout Int, position: Int) -> Bool {
                // An explicit stack (on the same scratch would overlap; the program is small and
                // closures are shallow, so recursion depth is bounded by the program size).
                if seen[pc] == step { return false }
                seen[pc] = step
                switch program[pc] {
                case .byte:
                    list[count] = Int32(pc)
                    count += 1
                    return false
                case .match:
                    return true
                case .jump(let target):
                    return add(target, to: list, count: &count, position: position)
                case .split(let a, let b):
                    let first = add(a, to: list, count: &count, position: position)
                    return add(b, to: list, count: &count, position: position) || first
                case .assertStart:
                    return position == 0 && add(pc + 1, to: list, count: &count, position: position)
                case .assertEnd:
                    return position == length && add(pc + 1, to: list, count: &count, position: position)
                }
            }

            for position in 0...length {
                // Unanchored search: a new thread may start at every position.
                if add(0, to: current, count: &currentCount, position: position) { return true }
                if position == length { break }
                var byte = name[position]
                if byte >= 0x41 && byte <= 0x5a { byte |= 0x20 }
                step += 1
                nextCount = 0
                for t in 0..<currentCount {
                    let pc = Int(current[t])
                    guard case .byte(let set) = program[pc], contains(set, byte) else { continue }
                    if add(pc + 1, to: next, count: &nextCount, position: position + 1) { return true }
                }
                swap(&current, &next)
                currentCount = nextCount
            }
            return false
        }
    }

    @inline(__always)
    private func contains(_ set: Int, _ byte: UInt8) -> Bool {
        sets[set * 4 + Int(byte >> 6)] & (1 << UInt64(byte & 63)) != 0
    }

    /// Matches text (for tools and tests).
    public func matches(_ text: String) -> Bool {
        var copy = text
        return copy.withUTF8 { matches(UnsafeRawBufferPointer($0)) }
    }

    // MARK: Parsing

    indirect enum Node {
        case empty
        case set([UInt64])
        case concat([Node])
        case alternation([Node])
        case repeated(Node, min: Int, max: Int?)
        case start
        case end
    }

    struct Parser {
        let bytes: [UInt8]
        var position = 0

        var atEnd: Bool { position >= bytes.count }
        var peek: UInt8? { atEnd ? nil : bytes[position] }

        func refuse(_ reason: String) -> Refusal { Refusal(reason: reason) }

        mutating func parseAlternation(depth: Int) throws(Refusal) -> Node {
            guard depth <= NameRegex.maxDepth else { throw refuse("groups nested more than \(NameRegex.maxDepth) deep") }
            var branches = [try parseConcat(depth: depth)]
            while peek == UInt8(ascii: "|") {
                position += 1
                branches.append(try parseConcat(depth: depth))
            }
            return branches.count == 1 ? branches[0] : .alternation(branches)
        }

        mutating func parseConcat(depth: Int) throws(Refusal) -> Node {
            var items: [Node] = []
            while let c = peek, c != UInt8(ascii: "|"), c != UInt8(ascii: ")") {
                var atom = try parseAtom(depth: depth)
                atom = try parseQuantifiers(atom)
                items.append(atom)
            }
            return items.count == 1 ? items[0] : (items.isEmpty ? .empty : .concat(items))
        }

        mutating func parseQuantifiers(_ atom: Node) throws(Refusal) -> Node {
            var node = atom
            var quantified = false
            while let c = peek {
                var bounds: (Int, Int?)
                switch c {
                case UInt8(ascii: "*"): bounds = (0, nil); position += 1
                case UInt8(ascii: "+"): bounds = (1, nil); position += 1
                case UInt8(ascii: "?"):
                    position += 1
                    if quantified { continue }  // a lazy quantifier: the same language
                    bounds = (0, 1)
                case UInt8(ascii: "{"):
                    guard let parsed = try parseBraces() else { return node }
                    bounds = parsed
                default:
                    return node
                }
                if case .start = node { throw refuse("a quantifier after '^'") }
                if case .end = node { throw refuse("a quantifier after '$'") }
                // `a**`, `a+{2}`: JavaScript refuses them, PCRE reads possessive forms; neither
                // is meant in a block list.
                if quantified { throw refuse("a quantifier on a quantifier") }
                node = .repeated(node, min: bounds.0, max: bounds.1)
                quantified = true
            }
            return node
        }

        /// `{n}`, `{n,}`, `{n,m}`; nil (and nothing consumed) when the brace is a literal.
        mutating func parseBraces() throws(Refusal) -> (Int, Int?)? {
            var i = position + 1
            func number() -> Int? {
                var value: Int?
                while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
                    value = (value ?? 0) * 10 + Int(bytes[i] - 0x30)
                    if value! > 10_000 { return value }
                    i += 1
                }
                return value
            }
            guard let low = number() else { return nil }
            var high: Int? = low
            if i < bytes.count, bytes[i] == UInt8(ascii: ",") {
                i += 1
                high = number()
            }
            guard i < bytes.count, bytes[i] == UInt8(ascii: "}") else { return nil }
            position = i + 1
            guard low <= NameRegex.maxRepeat, (high ?? 0) <= NameRegex.maxRepeat else {
                throw refuse("a repeat count above \(NameRegex.maxRepeat)")
            }
            if let high, high < low { throw refuse("{\(low),\(high)}: the upper bound is below the lower") }
            return (low, high)
        }

        mutating func parseAtom(depth: Int) throws(Refusal) -> Node {
            let c = bytes[position]
            position += 1
            switch c {
            case UInt8(ascii: "("):
                if peek == UInt8(ascii: "?") {
                    guard position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: ":") else {
                        throw refuse("lookaround and named groups '(?…' cannot be matched in linear time")
                    }
                    position += 2
                }
                let inner = try parseAlternation(depth: depth + 1)
                guard peek == UInt8(ascii: ")") else { throw refuse("a '(' without its ')'") }
                position += 1
                return inner
            case UInt8(ascii: "["):
                return .set(try parseClass())
            case UInt8(ascii: "."):
                return .set(ByteSet.all.subtracting(ByteSet.single(0x0a)).words)
            case UInt8(ascii: "^"):
                return .start
            case UInt8(ascii: "$"):
                return .end
            case UInt8(ascii: "\\"):
                return .set(try parseEscape(inClass: false).words)
            case UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "?"):
                throw refuse("'\(Character(UnicodeScalar(c)))' with nothing to repeat")
            default:
                return .set(ByteSet.literal(c).words)
            }
        }

        mutating func parseEscape(inClass: Bool) throws(Refusal) -> ByteSet {
            guard let c = peek else { throw refuse("a '\\' at the end") }
            position += 1
            switch c {
            case UInt8(ascii: "d"): return ByteSet.range(0x30, 0x39)
            case UInt8(ascii: "D"): return ByteSet.all.subtracting(ByteSet.range(0x30, 0x39))
            case UInt8(ascii: "w"): return ByteSet.word
            case UInt8(ascii: "W"): return ByteSet.all.subtracting(ByteSet.word)
            case UInt8(ascii: "s"): return ByteSet.space
            case UInt8(ascii: "S"): return ByteSet.all.subtracting(ByteSet.space)
            case UInt8(ascii: "t"): return ByteSet.single(0x09)
            case UInt8(ascii: "n"): return ByteSet.single(0x0a)
            case UInt8(ascii: "1")...UInt8(ascii: "9"):
                throw refuse("backreferences (\\\(Character(UnicodeScalar(c)))) cannot be matched in linear time")
            case UInt8(ascii: "b"), UInt8(ascii: "B"):
                if inClass && c == UInt8(ascii: "b") { return ByteSet.single(0x08) }
                throw refuse("word boundaries (\\b, \\B) are not supported")
            default:
                // Escaped punctuation is itself; an escaped letter with no meaning here is refused
                // rather than guessed.
                let isLetterOrDigit = (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7a)
                if isLetterOrDigit { throw refuse("unknown escape '\\\(Character(UnicodeScalar(c)))'") }
                return ByteSet.literal(c)
            }
        }

        mutating func parseClass() throws(Refusal) -> [UInt64] {
            var negated = false
            if peek == UInt8(ascii: "^") { negated = true; position += 1 }
            var set = ByteSet()
            var first = true
            while true {
                guard let c = peek else { throw refuse("a '[' without its ']'") }
                if c == UInt8(ascii: "]") && !first { position += 1; break }
                first = false
                var low: UInt8
                if c == UInt8(ascii: "\\") {
                    position += 1
                    let escaped = try parseEscape(inClass: true)
                    guard let single = escaped.onlyMember else { set.formUnion(escaped); continue }
                    low = single
                } else {
                    low = c
                    position += 1
                }
                // A range a-z (a '-' before ']' is a literal).
                if peek == UInt8(ascii: "-"), position + 1 < bytes.count, bytes[position + 1] != UInt8(ascii: "]") {
                    position += 1
                    var high = bytes[position]
                    position += 1
                    if high == UInt8(ascii: "\\") {
                        guard let single = try parseEscape(inClass: true).onlyMember else { throw refuse("a class escape as the end of a range") }
                        high = single
                    }
                    guard low <= high else { throw refuse("a range whose end comes before its start") }
                    set.formUnion(ByteSet.range(low, high).caseFolded)
                } else {
                    set.formUnion(ByteSet.literal(low))
                }
            }
            return negated ? ByteSet.all.subtracting(set).words : set.words
        }
    }
}
