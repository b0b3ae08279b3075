/// Why a download did not produce a new copy: a code to count and branch on, and a reason to
/// log (the copy in service stays in every case).
public struct DownloadError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// No connection, DNS failure, TLS failure, a reset: the network's fault.
        public static let network = Code("network")
        /// It took longer than the timeout.
        public static let timeout = Code("timeout")
        /// The server answered with a status other than 200 or 304.
        public static let status = Code("status")
        /// The body ended before its declared length (or its chunked end).
        public static let truncated = Code("truncated")
        /// The body passed the size cap.
        public static let oversized = Code("oversized")
        /// The body is not a list: binary, an HTML page, nothing readable, or not the pinned content.
        public static let content = Code("content")
        /// The cache directory could not be written.
        public static let storage = Code("storage")
    }

    public var code: Code
    public var reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { reason }
}
