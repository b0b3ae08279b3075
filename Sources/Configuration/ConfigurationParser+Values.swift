import Foundation
import RelayCore
import Yams

/// How values are read: scalars, lists, numbers in range, durations, sizes, marks, and the
/// errors that name the file, the line and the key.
extension ConfigurationParser {
    func mapping(_ node: Node, key: String?) throws(ConfigurationError) -> [(Node, Node)] {
        guard case .mapping(let m) = node else {
            throw error(node, key, key == nil ? "the file must be a mapping of sections" : "expected a mapping of keys")
        }
        return m.map { ($0.key, $0.value) }
    }

    /// A section's entries: the key's node (for its line), the value, the key's name and its
    /// dotted path (`upstream.timeout`), for error messages.
    func entries(of node: Node, section: String) throws(ConfigurationError) -> [(Node, Node, String, String)] {
        var out: [(Node, Node, String, String)] = []
        for (keyNode, value) in try mapping(node, key: section) {
            let name = try keyName(keyNode, parent: section)
            out.append((keyNode, value, name, "\(section).\(name)"))
        }
        return out
    }

    func keyName(_ node: Node, parent: String?) throws(ConfigurationError) -> String {
        guard case .scalar(let s) = node else { throw error(node, parent, "keys must be plain names") }
        return s.string
    }

    func scalar(_ node: Node, key: String) throws(ConfigurationError) -> String {
        guard case .scalar(let s) = node else { throw error(node, key, "expected a single value") }
        return s.string
    }

    func strings(_ node: Node, key: String) throws(ConfigurationError) -> [String] {
        guard case .sequence(let items) = node else { throw error(node, key, "expected a list, such as [lan0]") }
        var out: [String] = []
        for item in items { out.append(try scalar(item, key: key)) }
        return out
    }

    func boolean(_ node: Node, key: String) throws(ConfigurationError) -> Bool {
        switch try scalar(node, key: key).lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(node, key, "expected true or false")
        }
    }

    func integer(_ node: Node, key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        let text = try scalar(node, key: key)
        guard let value = Self.parseInteger(text) else { throw error(node, key, "expected a whole number, got '\(text)'") }
        guard range.contains(value) else {
            throw error(node, key, "\(value) is out of range (\(range.lowerBound)...\(range.upperBound))")
        }
        return value
    }

    func mark(_ node: Node, key: String) throws(ConfigurationError) -> UInt32 {
        let value = try integer(node, key: key, in: 0...Int(UInt32.max))
        guard value != 0 else { throw error(node, key, "must not be 0 (unmarked packets carry 0)") }
        return UInt32(value)
    }

    /// `2s`, `500ms`, `1.5s`, or a bare number of seconds.
    func duration(_ node: Node, key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        let text = try scalar(node, key: key)
        guard let ms = Self.parseDuration(text) else {
            throw error(node, key, "expected a duration such as 2s or 500ms, got '\(text)'")
        }
        guard range.contains(ms) else {
            throw error(node, key, "\(text) is out of range (\(range.lowerBound)ms...\(range.upperBound / 1000)s)")
        }
        return ms
    }

    static func parseInteger(_ text: String) -> Int? {
        if text.hasPrefix("0x") || text.hasPrefix("0X") { return Int(text.dropFirst(2), radix: 16) }
        return Int(text)
    }

    /// Milliseconds, or nil.
    public static func parseDuration(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces)
        func number(_ s: Substring) -> Double? { Double(s).flatMap { $0.isFinite && $0 >= 0 ? $0 : nil } }
        if t.hasSuffix("ms"), let v = number(t.dropLast(2)) { return Int(v.rounded()) }
        if t.hasSuffix("s"), let v = number(t.dropLast(1)) { return Int((v * 1000).rounded()) }
        if t.hasSuffix("m"), let v = number(t.dropLast(1)) { return Int((v * 60_000).rounded()) }
        if t.hasSuffix("h"), let v = number(t.dropLast(1)) { return Int((v * 3_600_000).rounded()) }
        if t.hasSuffix("d"), let v = number(t.dropLast(1)) { return Int((v * 86_400_000).rounded()) }
        if let v = number(Substring(t)) { return Int((v * 1000).rounded()) }
        return nil
    }

    // MARK: Errors

    func line(_ node: Node) -> Int { node.mark?.line ?? 0 }

    func error(_ node: Node, _ key: String?, _ message: String) -> ConfigurationError {
        ConfigurationError(file: file, line: node.mark?.line, key: key, message: message)
    }

    func unknown(_ node: Node, _ key: String, expected: String) -> ConfigurationError {
        error(node, key, "unknown key (expected one of \(expected))")
    }

    func lineOf(path: [String], in root: Node) -> Int? {
        var node = root
        var found: Node = root
        for component in path {
            guard case .mapping(let m) = node, let pair = m.first(where: { $0.key.string == component }) else { break }
            found = pair.key
            node = pair.value
        }
        return found.mark?.line
    }

    func syntaxError(_ error: YamlError) -> ConfigurationError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ConfigurationError(file: file, line: mark.line, key: nil, message: "YAML syntax error: \(problem)")
        default:
            return ConfigurationError(file: file, line: nil, key: nil, message: "not valid YAML: \(error)")
        }
    }

    /// A size: `1048576`, `512k`, `64M`, `1G` (powers of 1024; a trailing B is allowed).
    func bytes(_ node: Node, key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        let text = try scalar(node, key: key)
        var digits = Substring(text.uppercased())
        if digits.hasSuffix("B") { digits = digits.dropLast() }
        var multiplier = 1
        switch digits.last {
        case "K": multiplier = 1 << 10; digits = digits.dropLast()
        case "M": multiplier = 1 << 20; digits = digits.dropLast()
        case "G": multiplier = 1 << 30; digits = digits.dropLast()
        default: break
        }
        guard let value = Int(digits), value >= 0, value <= Int.max / multiplier else {
            throw error(node, key, "expected a size such as 64M, 512k or 1048576, got '\(text)'")
        }
        guard range.contains(value * multiplier) else {
            throw error(node, key, "\(text) is out of range (\(range.lowerBound) bytes...\(range.upperBound >> 30)G)")
        }
        return value * multiplier
    }

    /// Whole seconds: `300`, `5m`, `1h`, `1d`.
    func seconds(_ node: Node, key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> UInt32 {
        let text = try scalar(node, key: key)
        guard let ms = Self.parseDuration(text), ms % 1000 == 0 else {
            throw error(node, key, "expected whole seconds such as 300, 5m, 1h or 1d, got '\(text)'")
        }
        guard range.contains(ms / 1000) else {
            throw error(node, key, "\(text) is out of range (\(range.lowerBound)s...\(range.upperBound)s)")
        }
        return UInt32(ms / 1000)
    }
}
