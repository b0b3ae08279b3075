import Foundation
import LinuxNet
import RelayCore

/// Reading the query log: its files in order, entries parsed from lines, and following the live
/// file across rotations. Used by `tail` and `stats`.
public enum QueryLogFiles {
    /// The log's files, oldest first: `path.N` … `path.1`, `path` (those that exist).
    public static func files(_ path: String) -> [String] {
        var rotated: [String] = []
        var i = 1
        while FileManager.default.fileExists(atPath: "\(path).\(i)") {
            rotated.append("\(path).\(i)")
            i += 1
        }
        return rotated.reversed() + (FileManager.default.fileExists(atPath: path) ? [path] : [])
    }
}

/// One query-log line, parsed (`nil` fields where the line has none).
public struct QueryLogEntry: Sendable {
    public var line: String
    public var time: String
    /// Seconds since the epoch (from `time`).
    public var timestamp: Double
    public var proto: String
    public var client: String
    /// The client's name (`clients.names`), when one was known as the line was written.
    public var clientName: String?
    public var server: String
    public var qname: String?
    public var qtype: String?
    public var action: String
    public var rcode: String
    public var answers: [String]
    public var upstream: String?
    public var cached: Bool
    public var durationMicros: Int
    public var rule: (list: String, line: Int, text: String?)?
    public var sni: String?
    /// QUIC flows: bytes each way (so far, or in all on the end entry), and `end` on the entry
    /// written when the flow ends (nil on the entry written when it is decided).
    public var bytesUp: Int
    public var bytesDown: Int
    public var event: String?
    /// `local` for queries this host sent itself (`intercept.local`); nil for the LAN's.
    public var origin: String?

    /// The address part of an `address:port` / `[v6]:port` endpoint string.
    public static func address(of endpoint: String) -> String {
        if endpoint.hasPrefix("["), let close = endpoint.firstIndex(of: "]") {
            return String(endpoint[endpoint.index(after: endpoint.startIndex)..<close])
        }
        if let colon = endpoint.lastIndex(of: ":") { return String(endpoint[..<colon]) }
        return endpoint
    }

    /// Parses a line; nil for status lines and anything that is not an entry.
    public init?(line: String) {
        guard let data = line.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let time = object["time"] as? String, let action = object["action"] as? String
        else { return nil }
        self.line = line
        self.time = time
        self.timestamp = Self.parseTime(time) ?? 0
        proto = object["proto"] as? String ?? ""
        client = object["client"] as? String ?? ""
        clientName = object["client_name"] as? String
        server = object["server"] as? String ?? ""
        qname = object["qname"] as? String
        qtype = object["qtype"] as? String
        self.action = action
        rcode = object["rcode"] as? String ?? ""
        answers = object["answers"] as? [String] ?? []
        upstream = object["upstream"] as? String
        cached = object["cached"] as? Bool ?? false
        durationMicros = object["duration_us"] as? Int ?? 0
        if let rule = object["rule"] as? [String: Any], let list = rule["list"] as? String, let line = rule["line"] as? Int {
            self.rule = (list, line, rule["text"] as? String)
        }
        sni = object["sni"] as? String
        bytesUp = object["bytes_up"] as? Int ?? 0
        bytesDown = object["bytes_down"] as? Int ?? 0
        event = object["event"] as? String
        origin = object["origin"] as? String
    }

    /// A QUIC flow's end entry: its totals, not a new decision.
    public var isFlowEnd: Bool { event == "end" }

    /// 2026-11-26T21:13:32.123456Z → seconds since the epoch; nil for anything else, however
    /// large its numbers (a log is a file anyone may have written: the `log-line` fuzz target
    /// found an hour of 10^13 trapping in the conversion to Int32).
    static func parseTime(_ text: String) -> Double? {
        let parts = text.split(whereSeparator: { "-T:Z".contains($0) })
        guard parts.count >= 6, let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
              let hour = Int(parts[3]), let minute = Int(parts[4]), let seconds = Double(parts[5]),
              (1970...9999).contains(year), (1...12).contains(month), (1...31).contains(day),
              (0...23).contains(hour), (0...59).contains(minute), seconds >= 0, seconds < 61 else { return nil }
        var t = tm()
        t.tm_year = Int32(year - 1900); t.tm_mon = Int32(month - 1); t.tm_mday = Int32(day)
        t.tm_hour = Int32(hour); t.tm_min = Int32(minute); t.tm_sec = 0
        return Double(timegm(&t)) + seconds
    }
}

/// Which entries `tail` and `stats` keep.
public struct QueryLogFilter: Sendable {
    public var client: String?
    public var domain: String?
    public var action: String?
    public var proto: String?
    public var type: String?
    public var rcode: String?
    public var grep: String?
    public var since: Double?
    /// `local`: only queries this host sent itself (`"origin":"local"`); `lan`: only the others.
    public var origin: String?

    public init() {}

    /// `--client kids-ipad` matches the name `kids-ipad` and `kids-ipad.lan` (case aside).
    static func sameClient(named wanted: String, _ name: String?) -> Bool {
        guard let name = name?.lowercased() else { return false }
        let w = wanted.lowercased()
        return name == w || name.hasPrefix(w + ".")
    }

    /// The values `origin` takes.
    public static let origins = ["local", "lan"]

    public func matches(_ entry: QueryLogEntry) -> Bool {
        if let client {
            let address = QueryLogEntry.address(of: entry.client)
            if let block = IPPrefix(client), let parsed = IPAddress(address) {
                if !block.contains(parsed) { return false }
            } else if address != client && !Self.sameClient(named: client, entry.clientName) {
                return false
            }
        }
        if let domain {
            let d = domain.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "."))
            guard let name = (entry.qname ?? entry.sni)?.lowercased(), name == d || name.hasSuffix("." + d) else { return false }
        }
        if let action, entry.action != action.lowercased() { return false }
        if let proto, entry.proto != proto.lowercased() { return false }
        if let type, entry.qtype?.uppercased() != type.uppercased() { return false }
        if let rcode, entry.rcode.uppercased() != rcode.uppercased() { return false }
        if let grep, entry.line.range(of: grep, options: .regularExpression) == nil { return false }
        if let since, entry.timestamp < since { return false }
        if let origin, (entry.origin == "local") != (origin.lowercased() == "local") { return false }
        return true
    }
}

/// Follows the live log like `tail -F`: reads what is appended; when the file is replaced
/// (rotation: a new inode at the path) it finishes the old file first, then reads the new one
/// from its start, so no line is lost or repeated. Partial lines wait for their newline.
public final class QueryLogFollower {
    private let path: String
    private var fd: Int32 = -1
    private var inode: UInt64 = 0
    private var pending: [UInt8] = []
    private var chunk = [UInt8](repeating: 0, count: 1 << 16)

    public init(path: String) {
        self.path = path
    }

    deinit { if fd >= 0 { FileCalls.close(fd) } }

    /// Opens the live file and returns every complete line it holds now (the follower goes on
    /// from there).
    public func start() -> [String] {
        open()
        return readToEnd()
    }

    /// Complete lines appended since the last call. When the path now names another file (a
    /// rotation), the old file is read to its end first, then the new one from its start.
    public func poll() -> [String] {
        var lines = readToEnd()
        if let current = FileCalls.inode(of: path) {
            if current != inode || fd < 0 {
                lines += readToEnd()
                // Several rotations since the last poll: the files between the old one (now
                // path.k) and the live one are read whole, oldest first.
                if fd >= 0, let k = rotatedIndex(of: inode) {
                    for i in stride(from: k - 1, through: 1, by: -1) {
                        open("\(path).\(i)")
                        lines += readToEnd()
                    }
                }
                open()
                lines += readToEnd()
            }
        }
        return lines
    }

    /// The complete lines appended since the last call, as bytes, but never more than the last
    /// `maxBytes` of the live file: when the log grew faster than that, the reader jumps ahead
    /// (to a line start) and says how many bytes it passed over. For a live view, whose cost
    /// must stay flat however busy the relay is; `poll()` is for readers that want every line.
    public func recentLines(maxBytes: Int) -> (lines: [ArraySlice<UInt8>], skipped: Int) {
        if let current = FileCalls.inode(of: path), current != inode || fd < 0 { open() }
        guard fd >= 0, let size = try? FileCalls.status(fd).size else { return ([], 0) }
        let position = Int(lseek(fd, 0, SEEK_CUR))
        var skipped = 0
        var dropPartial = false
        if position >= 0 && size - position > maxBytes {
            skipped = size - maxBytes - position + pending.count
            pending = []
            lseek(fd, off_t(size - maxBytes), SEEK_SET)
            dropPartial = true
        }
        var bytes = pending
        pending = []
        while bytes.count < maxBytes + (1 << 16) {
            let n = chunk.withUnsafeMutableBytes { (try? FileCalls.read(fd, into: $0)) ?? 0 }
            guard n > 0 else { break }
            bytes += chunk[0..<n]
        }
        var start = 0
        if dropPartial, let first = bytes.firstIndex(of: 0x0a) {
            skipped += first + 1
            start = first + 1
        }
        var lines: [ArraySlice<UInt8>] = []
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            while start < raw.count, let newline = memchr(base + start, 0x0a, raw.count - start) {
                let end = UnsafeRawPointer(newline) - base
                lines.append(bytes[start..<end])
                start = end + 1
            }
        }
        if start < bytes.count { pending = Array(bytes[start...]) }
        return (lines, skipped)
    }

    /// k such that path.k is the file with this inode (k ≤ 1000).
    private func rotatedIndex(of inode: UInt64) -> Int? {
        var k = 1
        while k <= 1000, let rotated = FileCalls.inode(of: "\(path).\(k)") {
            if rotated == inode { return k }
            k += 1
        }
        return nil
    }

    private func open(_ file: String? = nil) {
        if fd >= 0 { FileCalls.close(fd) }
        fd = (try? FileCalls.open(file ?? path, flags: O_RDONLY | O_CLOEXEC)) ?? -1
        pending = []
        inode = fd >= 0 ? (try? FileCalls.status(fd).inode) ?? 0 : 0
    }

    /// Reads until read(2) says end of file (one read may return less than is there).
    private func readToEnd() -> [String] {
        guard fd >= 0 else { return [] }
        var lines: [String] = []
        while true {
            let n = chunk.withUnsafeMutableBytes { (try? FileCalls.read(fd, into: $0)) ?? 0 }
            guard n > 0 else { break }
            var start = 0
            for i in 0..<n where chunk[i] == 0x0a {
                if pending.isEmpty {
                    lines.append(String(decoding: chunk[start..<i], as: UTF8.self))
                } else {
                    pending += chunk[start..<i]
                    lines.append(String(decoding: pending, as: UTF8.self))
                    pending.removeAll(keepingCapacity: true)
                }
                start = i + 1
            }
            if start < n { pending += chunk[start..<n] }
        }
        return lines
    }
}
