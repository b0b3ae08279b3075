import RelayCore
import Yams

extension Configuration {
    /// dnstap output (docs/FLEET.md): one event per query (and, if asked, per upstream exchange) in
    /// the dnstap protobuf schema over Frame Streams, to a collector or a file. Off by default.
    public struct Dnstap: Equatable, Sendable {
        public init() {}

        /// Where frames go.
        public enum Target: Equatable, Sendable, CustomStringConvertible {
            /// A Frame Streams receiver's unix stream socket (fstrm_capture -u, DNS-collector, Vector).
            case unix(String)
            /// A Frame Streams receiver over TCP; an address, never a name (the relay is the resolver).
            case tcp(Endpoint)
            /// A file written unidirectionally (START, frames, STOP), for debugging: `dnstap-ldns -r`.
            case file(String)

            public var description: String {
                switch self {
                case .unix(let path): return "unix:\(path)"
                case .tcp(let endpoint): return "tcp:\(endpoint)"
                case .file(let path): return "file:\(path)"
                }
            }
        }

        /// The dnstap message types the relay emits (`Message.Type`).
        public enum Message: String, CaseIterable, Equatable, Sendable {
            /// A client's query as it arrived.
            case clientQuery = "client_query"
            /// The answer sent to a client (with a `Policy` when the relay decided it).
            case clientResponse = "client_response"
            /// A query as sent to an upstream.
            case forwarderQuery = "forwarder_query"
            /// An upstream's answer as it arrived.
            case forwarderResponse = "forwarder_response"
        }

        /// nil: no dnstap.
        public var target: Target?
        /// `Dnstap.identity`; nil: the host name.
        public var identity: String?
        /// `Dnstap.version`; nil: `tproxy-relay <version>`.
        public var version: String?
        /// What is emitted: by default the answers only, as blocky does (one frame per query).
        public var messages: Set<Message> = [.clientResponse]
        /// Frames each worker holds while the writer (or the collector) is behind; more are
        /// dropped and counted.
        public var queue = 8192

        public var isOn: Bool { target != nil }
    }
}

extension ConfigurationParser {
    static let dnstap: [Key<Configuration.Dnstap>] = [
        // `unix:/path`, `tcp:host:port`, `file:/path`, or a bare absolute path (a unix socket).
        Key("socket") { p, v, k, s throws(ConfigurationError) in
            try oneTarget(p, v, k, s)
            let text = try p.scalar(v, key: k)
            if text.hasPrefix("tcp:") {
                s.target = .tcp(try tcpEndpoint(p, v, k, String(text.dropFirst(4))))
            } else if text.hasPrefix("file:") {
                s.target = .file(try path(p, v, k, String(text.dropFirst(5))))
            } else if text.hasPrefix("unix:") {
                s.target = .unix(try socketPath(p, v, k, String(text.dropFirst(5))))
            } else if text.hasPrefix("/") {
                s.target = .unix(try socketPath(p, v, k, text))
            } else {
                throw p.error(v, k, "expected unix:/run/tproxy-relay/dnstap.sock, tcp:10.0.0.5:6000 or file:/var/log/tproxy-relay/dnstap.fstrm, got '\(text)'")
            }
        },
        Key("tcp") { p, v, k, s throws(ConfigurationError) in
            try oneTarget(p, v, k, s)
            s.target = .tcp(try tcpEndpoint(p, v, k, try p.scalar(v, key: k))) },
        Key("file") { p, v, k, s throws(ConfigurationError) in
            try oneTarget(p, v, k, s)
            s.target = .file(try path(p, v, k, try p.scalar(v, key: k))) },
        Key("identity") { p, v, k, s throws(ConfigurationError) in s.identity = try text(p, v, k) },
        Key("version") { p, v, k, s throws(ConfigurationError) in s.version = try text(p, v, k) },
        Key("messages") { p, v, k, s throws(ConfigurationError) in
            let names = try p.strings(v, key: k)
            guard !names.isEmpty else { throw p.error(v, k, "name at least one message type (or leave the dnstap section out)") }
            var messages: Set<Configuration.Dnstap.Message> = []
            for name in names {
                guard let message = Configuration.Dnstap.Message(rawValue: name) else {
                    let known = Configuration.Dnstap.Message.allCases.map(\.rawValue).joined(separator: ", ")
                    throw p.error(v, k, "'\(name)' is not a message type the relay emits (\(known))")
                }
                messages.insert(message)
            }
            s.messages = messages
        },
        Key("queue") { p, v, k, s throws(ConfigurationError) in s.queue = try p.integer(v, key: k, in: 64...1_048_576) },
    ]

    private static func oneTarget(_ p: ConfigurationParser, _ v: Node, _ k: String, _ s: Configuration.Dnstap) throws(ConfigurationError) {
        if let target = s.target { throw p.error(v, k, "a second target (the section already sends to \(target)); name one of socket, tcp, file") }
    }

    private static func tcpEndpoint(_ p: ConfigurationParser, _ v: Node, _ k: String, _ text: String) throws(ConfigurationError) -> Endpoint {
        guard let endpoint = Endpoint(parsing: text, defaultPort: 0), endpoint.port != 0, !endpoint.address.isUnspecified else {
            throw p.error(v, k, "'\(text)' is not a collector's address and port (10.0.0.5:6000, [fd00::5]:6000; an address, not a name)")
        }
        return endpoint
    }

    private static func path(_ p: ConfigurationParser, _ v: Node, _ k: String, _ text: String) throws(ConfigurationError) -> String {
        guard !text.isEmpty, !text.hasSuffix("/") else { throw p.error(v, k, "expected a file path, such as /var/log/tproxy-relay/dnstap.fstrm") }
        return p.resolve(text)
    }

    /// A unix socket path must fit `sockaddr_un.sun_path` (108 bytes with its terminator).
    private static func socketPath(_ p: ConfigurationParser, _ v: Node, _ k: String, _ text: String) throws(ConfigurationError) -> String {
        let resolved = try path(p, v, k, text)
        guard resolved.utf8.count < 108 else { throw p.error(v, k, "'\(resolved)' is longer than a unix socket path may be (107 bytes)") }
        return resolved
    }

    /// Identity and version: short printable text (they travel in every frame).
    private static func text(_ p: ConfigurationParser, _ v: Node, _ k: String) throws(ConfigurationError) -> String {
        let text = try p.scalar(v, key: k)
        guard text.utf8.count <= 255, !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw p.error(v, k, "expected up to 255 bytes of printable text")
        }
        return text
    }
}
