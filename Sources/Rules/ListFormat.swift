import Foundation
import Glibc
import RelayCore

/// Which of the list formats the relay reads a file is written in, judged from its first
/// 64 KiB (for the dashboard's Lists page; loading never depends on it): the shape most of its
/// rule lines have, or "mixed" when no shape has three quarters of them.
public enum ListFormat {
    public static func guess(path: String) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return "unreadable" }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return n == 0 ? "empty" : "unreadable" }
        return guess(text: buffer[0..<n])
    }

    /// The format of these lines (the last one, possibly cut short, is left out when there are others).
    public static func guess(text: ArraySlice<UInt8>) -> String {
        var counts: [String: Int] = [:]
        var lines = text.split(separator: 0x0a, omittingEmptySubsequences: true)
        if lines.count > 1 && text.last != 0x0a { lines.removeLast() }
        for raw in lines {
            let line = String(decoding: raw, as: UTF8.self).trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("!") || (line.hasPrefix("#") && !line.hasPrefix("##")) || line.hasPrefix("[") { continue }
            counts[shape(line), default: 0] += 1
        }
        let total = counts.values.reduce(0, +)
        guard total > 0, let best = counts.max(by: { $0.value < $1.value }) else { return "empty" }
        return best.value * 4 >= total * 3 ? best.key : "mixed"
    }

    static func shape(_ line: String) -> String {
        if line.hasPrefix("||") || line.hasPrefix("@@") || line.hasPrefix("|") || line.contains("$") || line.hasSuffix("^") { return "adblock" }
        if line.hasPrefix("address=/") || line.hasPrefix("server=/") || line.hasPrefix("local=/") { return "dnsmasq" }
        if line.hasPrefix("local-zone:") { return "unbound" }
        if line.hasPrefix("/") && line.hasSuffix("/") && line.count > 2 { return "regex" }
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        if fields.count >= 2, IPAddress(String(fields[0])) != nil { return "hosts" }
        if line.hasPrefix("*.") { return "wildcard" }
        if fields.count == 1 { return "domains" }
        return "other"
    }
}
