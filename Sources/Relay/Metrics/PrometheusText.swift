/// The Prometheus text exposition format (version 0.0.4): `# HELP` and `# TYPE` once per
/// family, then its samples. Label values and help texts are escaped as the format says, so a
/// list path with a quote or a newline cannot break the page.
struct PrometheusText {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"
    static let prefix = "tproxy_relay_"

    enum Kind: String { case counter, gauge, histogram }

    private(set) var text = ""

    init() { text.reserveCapacity(32 * 1024) }

    /// Starts the family `tproxy_relay_<name>` (a counter's name ends in `_total` already).
    mutating func family(_ name: String, _ kind: Kind, _ help: String) {
        text += "# HELP \(Self.prefix)\(name) \(Self.escapeHelp(help))\n# TYPE \(Self.prefix)\(name) \(kind.rawValue)\n"
    }

    mutating func sample(_ name: String, _ labels: KeyValuePairs<String, String> = [:], _ value: Int) {
        line(name, Array(labels), String(value))
    }

    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Int) {
        line(name, labels, String(value))
    }

    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
        line(name, labels, Self.format(value))
    }

    /// A family with a single sample.
    mutating func single(_ name: String, _ kind: Kind, _ help: String, _ value: Int) {
        family(name, kind, help)
        sample(name, [], value)
    }

    private mutating func line(_ name: String, _ labels: [(String, String)], _ value: String) {
        text += Self.prefix
        text += name
        if !labels.isEmpty {
            text += "{"
            for (i, (key, labelValue)) in labels.enumerated() {
                if i > 0 { text += "," }
                text += key
                text += "=\""
                text += Self.escapeLabel(labelValue)
                text += "\""
            }
            text += "}"
        }
        text += " "
        text += value
        text += "\n"
    }

    static func format(_ value: Double) -> String {
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value.isNaN { return "NaN" }
        return "\(value)"
    }

    static func escapeLabel(_ value: String) -> String {
        guard value.contains(where: { $0 == "\\" || $0 == "\"" || $0 == "\n" }) else { return value }
        var out = ""
        for c in value {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }

    static func escapeHelp(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }
}
