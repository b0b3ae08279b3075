import ClientNames
import Foundation
import HTTP
import QueryLog
import RelayCore

/// The Live page's stream (Server-Sent Events): the query log's new lines that pass the
/// filters, each as one `data:` event holding the line's JSON as the relay wrote it. Its cost
/// stays flat however busy the relay is: each turn reads at most `maxBytesPerTurn` of new log
/// (jumping ahead when the log grew more) and sends at most `maxLinesPerTurn` lines, the newest
/// that match; what it passed over (`lines` looked past, `bytes` not read) is announced in a
/// `skipped` event, so the page can say it is sampling.
/// Filters are checked on the lines' bytes (`RawLogFields`), never by parsing JSON.
final class LiveFeed {
    struct Filter: Equatable {
        var client: String?
        var domain: String?
        var action: String?
        var proto: String?
        var type: String?

        static let actions = ["allowed", "blocked", "rewritten", "local", "cached", "dropped", "error"]
        static let protos = ["udp", "tcp", "quic"]

        /// From the query string; the error says which parameter is wrong.
        static func parse(_ items: [String: String]) -> Result<Filter, DashboardError> {
            var filter = Filter()
            func value(_ key: String) -> String? {
                guard let v = items[key]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
                return v
            }
            if let client = value("client") {
                if IPAddress(client) != nil || IPPrefix(client) != nil {
                    filter.client = client
                } else if let name = ClientNameText.normalize(client), name.utf8.contains(where: { $0 >= 0x61 && $0 <= 0x7a }) {
                    // A client's name as the log writes it (clients.names); a name has a letter,
                    // so that a mistyped address is refused rather than taken for one.
                    filter.client = name
                } else {
                    return .failure(DashboardError("client: '\(client)' is not an address, a CIDR or a client name"))
                }
            }
            if let domain = value("domain") {
                let d = domain.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "."))
                guard !d.isEmpty, d.utf8.count <= 253, d.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C }) else {
                    return .failure(DashboardError("domain: '\(domain)' is not a name"))
                }
                filter.domain = d
            }
            if let action = value("action") {
                guard actions.contains(action.lowercased()) else { return .failure(DashboardError("action: '\(action)' is not one of \(actions.joined(separator: ", "))")) }
                filter.action = action.lowercased()
            }
            if let proto = value("proto") {
                guard protos.contains(proto.lowercased()) else { return .failure(DashboardError("proto: '\(proto)' is not one of udp, tcp, quic")) }
                filter.proto = proto.lowercased()
            }
            if let type = value("type") {
                guard type.utf8.count <= 12, type.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) }) else {
                    return .failure(DashboardError("type: '\(type)' is not a record type"))
                }
                filter.type = type.uppercased()
            }
            return .success(filter)
        }

        func matches(_ line: ArraySlice<UInt8>) -> Bool {
            if let action, !(RawLogFields.string(line, RawLogFields.action)?.elementsEqual(action.utf8) ?? false) { return false }
            if let proto, !(RawLogFields.string(line, RawLogFields.proto)?.elementsEqual(proto.utf8) ?? false) { return false }
            if let type, !(RawLogFields.string(line, RawLogFields.qtype)?.elementsEqual(type.utf8) ?? false) { return false }
            if let domain {
                guard let raw = RawLogFields.string(line, RawLogFields.qname) ?? RawLogFields.string(line, RawLogFields.sni) else { return false }
                let name = String(decoding: raw, as: UTF8.self).lowercased()
                guard name == domain || name.hasSuffix("." + domain) else { return false }
            }
            if let client {
                guard let raw = RawLogFields.string(line, RawLogFields.client) else { return false }
                let address = String(decoding: RawLogFields.address(raw), as: UTF8.self)
                if client.contains("/"), let prefix = IPPrefix(client) {
                    guard let parsed = IPAddress(address), prefix.contains(parsed) else { return false }
                } else if address != client {
                    // A client's name (`clients.names`): `kids-ipad` also selects `kids-ipad.lan`.
                    guard let raw = RawLogFields.string(line, RawLogFields.clientName) else { return false }
                    let name = String(decoding: raw, as: UTF8.self)
                    guard name == client || name.hasPrefix(client + ".") else { return false }
                }
            }
            return true
        }
    }

    let filter: Filter
    private let follower: QueryLogFollower
    private var lastSent: UInt64 = 0
    private var started = false
    let maxBytesPerTurn: Int
    let maxLinesPerTurn: Int
    static let heartbeatNanoseconds: UInt64 = 15_000_000_000

    init(path: String, filter: Filter, maxBytesPerTurn: Int = 256 << 10, maxLinesPerTurn: Int = 50) {
        self.filter = filter
        follower = QueryLogFollower(path: path)
        self.maxBytesPerTurn = maxBytesPerTurn
        self.maxLinesPerTurn = maxLinesPerTurn
    }

    /// The next events: the matching lines since the last turn (the last `maxLinesPerTurn` of
    /// them; the first turn gives the latest ones already in the log), a `skipped` event when
    /// lines were passed over, and a comment every 15 s so that a dead reader is noticed.
    func next(now: UInt64) -> HTTPStream.Step {
        let (lines, skippedBytes) = follower.recentLines(maxBytes: maxBytesPerTurn)
        // Newest first, until the turn's share is found: on a busy log the older lines of the
        // window are passed over unread (counted, not filtered).
        var matching: [ArraySlice<UInt8>] = []
        var passed = 0
        for (k, line) in lines.enumerated().reversed() {
            if matching.count == maxLinesPerTurn {
                passed = k + 1
                break
            }
            if filter.matches(line) { matching.append(line) }
        }
        matching.reverse()
        var out: [UInt8] = []
        if !started {
            out += Array("retry: 2000\n\n".utf8)
            started = true
        }
        if passed > 0 || (skippedBytes > 0 && lastSent != 0) {
            out += Array("event: skipped\ndata: {\"lines\":\(passed),\"bytes\":\(skippedBytes)}\n\n".utf8)
        }
        for line in matching {
            out += Array("data: ".utf8)
            out += line
            out += [0x0a, 0x0a]
        }
        if out.isEmpty {
            guard now &- lastSent >= Self.heartbeatNanoseconds else { return .idle }
            out = Array(": keep-alive\n\n".utf8)
        }
        lastSent = now
        return .bytes(out)
    }
}
