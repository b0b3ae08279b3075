/// A configuration problem, located: `relay.yaml:12: upstream.timeout: expected a duration such as 2s`.
public struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    public var file: String
    /// 1-based line, or nil when the problem is the whole file (missing, unreadable).
    public var line: Int?
    /// Dotted key path (`upstream.timeout`), or nil for syntax errors.
    public var key: String?
    public var message: String

    public init(file: String, line: Int?, key: String?, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        var out = file
        if let line { out += ":\(line)" }
        out += ": "
        if let key { out += "\(key): " }
        return out + message
    }
}
