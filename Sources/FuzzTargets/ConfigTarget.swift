import Configuration

/// The YAML configuration, as `check` and `run` read it.
enum ConfigTarget {
    @Sendable static func run(_ data: UnsafeRawBufferPointer) {
        guard let text = String(validating: data, as: UTF8.self) else { return }
        _ = try? ConfigurationParser(file: "fuzz.yaml").parse(text)
    }
}
