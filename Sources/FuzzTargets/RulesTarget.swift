import Rules

/// List lines in every format, and each regex the parser accepts compiled and matched against
/// names taken from the input too.
enum RulesTarget {
    @Sendable static func run(_ data: UnsafeRawBufferPointer) {
        let text = String(decoding: data, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for line in lines.prefix(64) {
            _ = LineParser.parse(line)
            if line.hasPrefix("/"), line.count > 2, let regex = try? NameRegex(String(line.dropFirst().dropLast())) {
                for name in lines.prefix(8) { _ = regex.matches(String(name.prefix(253))) }
            }
        }
    }
}
