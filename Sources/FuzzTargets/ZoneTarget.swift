import DNS

/// Zone file text read by ldns, as a zone in the zones directory would be.
enum ZoneTarget {
    @Sendable static func run(_ data: UnsafeRawBufferPointer) {
        guard !data.contains(0), let text = String(validating: data, as: UTF8.self) else { return }
        _ = try? ZoneFile.parse(text: text, origin: "fuzz.lan", file: "fuzz.lan.zone")
    }
}
