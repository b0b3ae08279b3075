import RelayCore
import Rules

/// Lists subscribed by URL (`filters.lists` entries that are `http://` or `https://` URLs):
/// downloaded into `filters.cache_dir` and read from there exactly like a local list.
extension Configuration {
    /// One list downloaded from a URL (docs/FILTERING.md, "Lists by URL").
    public struct ListSubscription: Equatable, Sendable {
        /// The URL as written (it is also the list's name in the query log and in `explain`).
        public var url: String
        /// Seconds between downloads; nil: `filters.refresh`.
        public var refresh: Int?
        /// A pinned SHA-256 of the content (lowercase hex): any other content is refused.
        public var sha256: String?
        /// Where it was written, for errors found later.
        public var line: Int?

        public init(url: String, refresh: Int? = nil, sha256: String? = nil, line: Int? = nil) {
            self.url = url
            self.refresh = refresh
            self.sha256 = sha256
            self.line = line
        }

        /// The cached copy's file in `directory`: the host (for a person reading the directory)
        /// and a 64-bit FNV-1a hash of the whole URL (two URLs of one host never share a file).
        public func cacheFile(in directory: String) -> String {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in url.utf8 {
                hash ^= UInt64(byte)
                hash &*= 0x100_0000_01b3
            }
            let host = ListURL(url)?.host ?? "list"
            let safe = String(host.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" }.prefix(64))
            let hex = String(hash, radix: 16)
            return directory + "/" + safe + "-" + String(repeating: "0", count: 16 - hex.count) + hex + ".txt"
        }
    }

    /// A list URL taken apart just enough to check it; libcurl does the rest.
    public struct ListURL: Equatable, Sendable {
        public var scheme: String
        public var host: String

        /// Whether a `filters.lists` entry is meant as a URL rather than a path.
        public static func looksLikeURL(_ text: String) -> Bool {
            guard let colon = text.firstIndex(of: ":"), text[colon...].hasPrefix("://") else { return false }
            return !text[..<colon].isEmpty && text[..<colon].allSatisfy { $0.isLetter || $0.isNumber || "+-.".contains($0) }
        }

        /// Nil when it is not a URL at all; `problem` says what is wrong with one that is.
        public init?(_ text: String) {
            guard case .success(let url) = Self.parse(text) else { return nil }
            self = url
        }

        public static func parse(_ text: String) -> Result<ListURL, ParseProblem> {
            guard looksLikeURL(text), let colon = text.firstIndex(of: ":") else { return .failure(.init("not a URL")) }
            let scheme = text[..<colon].lowercased()
            guard scheme == "http" || scheme == "https" else {
                return .failure(.init("unsupported scheme '\(scheme)': lists are downloaded over http:// or https://; give other lists as file paths"))
            }
            guard text.utf8.count <= 2048 else { return .failure(.init("the URL is longer than 2048 bytes")) }
            guard text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else {
                return .failure(.init("the URL has spaces, control or non-ASCII characters (percent-encode them)"))
            }
            let rest = text[text.index(colon, offsetBy: 3)...]
            let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
            guard !authority.contains("@") else { return .failure(.init("credentials in the URL are not supported")) }
            var host = Substring(authority)
            if host.hasPrefix("[") {
                guard let close = host.firstIndex(of: "]") else { return .failure(.init("an IPv6 host needs its closing ]")) }
                let port = host[host.index(after: close)...]
                guard port.isEmpty || (port.hasPrefix(":") && UInt16(port.dropFirst()) != nil) else { return .failure(.init("bad port '\(port.dropFirst())'")) }
                host = host[host.index(after: host.startIndex)..<close]
                guard IPAddress(String(host)) != nil else { return .failure(.init("'\(host)' is not an IPv6 address")) }
            } else if let c = host.firstIndex(of: ":") {
                let port = host[host.index(after: c)...]
                guard UInt16(port) != nil, UInt16(port) != 0 else { return .failure(.init("bad port '\(port)'")) }
                host = host[..<c]
            }
            guard !host.isEmpty else { return .failure(.init("the URL has no host")) }
            guard host.allSatisfy({ $0.isLetter || $0.isNumber || "-._:".contains($0) }) else {
                return .failure(.init("'\(host)' is not a host name or address"))
            }
            return .success(ListURL(scheme: scheme, host: String(host)))
        }

        private init(scheme: String, host: String) {
            self.scheme = scheme
            self.host = host
        }

        public struct ParseProblem: Error, Equatable, Sendable {
            public var reason: String
            init(_ reason: String) { self.reason = reason }
        }
    }
}

extension Configuration.Filters {
    /// The subscription behind a `lists` entry, or nil for a local file.
    public func subscription(for entry: String) -> Configuration.ListSubscription? {
        subscriptions.first { $0.url == entry }
    }

    /// The file each `lists` entry is read from, in order: the path itself, or the cached copy
    /// of a URL. Indices match `lists` (the query log and per-client masks go by index).
    public var listFiles: [String] {
        lists.map { entry in subscription(for: entry)?.cacheFile(in: cacheDirectory) ?? entry }
    }

    /// The cached copies: files that may be missing (not downloaded yet) without failing a load.
    public var cachedListFiles: Set<String> {
        Set(subscriptions.map { $0.cacheFile(in: cacheDirectory) })
    }

    /// The entries that are files on this machine (what the watcher watches).
    public var localLists: [String] {
        lists.filter { subscription(for: $0) == nil }
    }

    /// Seconds between downloads of one subscription.
    public func refreshSeconds(of subscription: Configuration.ListSubscription) -> Int {
        subscription.refresh ?? refreshSeconds
    }
}

extension Configuration.Filters {
    /// Cached copy → its URL, for reports, errors and `explain`.
    public var cachedListNames: [String: String] {
        Dictionary(subscriptions.map { ($0.cacheFile(in: cacheDirectory), $0.url) }, uniquingKeysWith: { a, _ in a })
    }

    /// Every list, read as the relay reads it: local files, and URL lists from their cached
    /// copies (one not downloaded yet is empty).
    public func loadRuleSet() throws(RuleLoadError) -> RuleSet {
        try RuleSetBuilder.load(paths: listFiles, mayBeAbsent: cachedListFiles, names: cachedListNames)
    }
}
