/// The fuzz targets (issue 13): one function per parser of untrusted bytes, each run on any
/// input without crashing, hanging or leaking. `scripts/fuzz.sh TARGET SECONDS` fuzzes one with
/// libFuzzer (the `tproxy-relay-fuzz` product, built with `--sanitize fuzzer --sanitize
/// address`); `FuzzCorpusTests` replays every saved input of every target in the unit suite, so
/// that a crash once found and fixed stays fixed.
public enum FuzzTargets {
    /// A target: its name (the corpus folder under Fuzz/corpus/) and what it does with one input.
    public struct Target: Sendable {
        public let name: String
        public let summary: String
        public let run: @Sendable (UnsafeRawBufferPointer) -> Void
    }

    public static let all: [Target] = [
        Target(name: "query", summary: "DNS query parser and classification, the answers built in place", run: QueryTarget.run),
        Target(name: "answer", summary: "upstream answer acceptance: question match, whole-message check, TTL clamp, truncation, alias composition", run: AnswerTarget.run),
        Target(name: "zone", summary: "zone file reader (ldns) on text", run: ZoneTarget.run),
        Target(name: "rules", summary: "rule line parser (every format) and the regex compiler and matcher", run: RulesTarget.run),
        Target(name: "config", summary: "the YAML configuration parser", run: ConfigTarget.run),
        Target(name: "quic", summary: "QUIC Initial sniffing over datagrams: long header, keys, header protection, AEAD", run: QUICTarget.run),
        Target(name: "quic-plaintext", summary: "behind decryption: frame walker, CRYPTO assembler, ClientHello", run: QUICPlaintextTarget.run),
        Target(name: "tcp-frames", summary: "the TCP length-prefix frame reader, input cut at arbitrary points", run: TCPFramesTarget.run),
        Target(name: "http-head", summary: "the metrics endpoint's HTTP request-head parser, input arriving in pieces", run: HTTPHeadTarget.run),
        Target(name: "fstrm-control", summary: "Frame Streams control frames from a dnstap collector, arriving in pieces", run: FrameStreamsTarget.run),
        Target(name: "log-line", summary: "the query log follower's line reader and entry parser", run: LogLineTarget.run),
        Target(name: "client-names", summary: "hosts and lease files (dnsmasq, ISC, Kea) and PTR answers, the sources of client names", run: ClientNamesTarget.run),
    ]

    public static func target(named name: String) -> Target? { all.first { $0.name == name } }
}

/// Splits fuzz input into pieces: each piece is a 2-byte big-endian length then that many bytes
/// (the last piece takes what is left). Lets one input carry several datagrams or reads.
struct Pieces: Sequence, IteratorProtocol {
    let data: UnsafeRawBufferPointer
    var offset = 0

    init(_ data: UnsafeRawBufferPointer) { self.data = data }

    mutating func next() -> UnsafeRawBufferPointer? {
        guard offset < data.count else { return nil }
        guard offset + 2 <= data.count else {
            defer { offset = data.count }
            return UnsafeRawBufferPointer(rebasing: data[offset...])
        }
        let length = Int(data[offset]) << 8 | Int(data[offset + 1])
        let start = offset + 2
        let end = Swift.min(data.count, start + length)
        offset = end
        return UnsafeRawBufferPointer(rebasing: data[start..<end])
    }
}
