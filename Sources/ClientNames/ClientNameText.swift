/// What a client name may be: a host name as DHCP clients and hosts files give them, kept to
/// lower-case letters, digits, `-`, `_` and dots (so that it goes into a JSON line, a terminal
/// and an HTML page as it is), at most 253 bytes.
public enum ClientNameText {
    public static func normalize<S: StringProtocol>(_ raw: S) -> String? {
        var bytes = Array(raw.utf8)
        while bytes.last == 0x2e { bytes.removeLast() }  // a trailing dot (FQDN form)
        guard !bytes.isEmpty, bytes.count <= 253, bytes.first != 0x2e else { return nil }
        for i in bytes.indices {
            let b = bytes[i]
            switch b {
            case 0x41...0x5a: bytes[i] = b | 0x20
            case 0x61...0x7a, 0x30...0x39, 0x2d, 0x5f, 0x2e: break
            default: return nil
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A line of a names file that was not used, and why (logged as file:line).
public struct NameFileProblem: Equatable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var reason: String
    public var description: String { "\(file):\(line): \(reason)" }
}

/// Names read from one file, in file order (a later line for the same address wins, as lease
/// files append renewals).
public struct NameFileContents: Equatable, Sendable {
    public var names: [(address: IPAddress, name: String)] = []
    public var problems: [NameFileProblem] = []

    public static func == (a: NameFileContents, b: NameFileContents) -> Bool {
        a.names.map(\.address) == b.names.map(\.address) && a.names.map(\.name) == b.names.map(\.name) && a.problems == b.problems
    }
}

import RelayCore

extension NameFileContents {
    /// Splits `bytes` into lines (LF or CRLF) with their numbers; at most `maxLines`.
    static func lines(_ bytes: [UInt8], maxLines: Int = 1 << 20) -> [(number: Int, text: Substring)] {
        let text = String(decoding: bytes, as: UTF8.self)
        var out: [(Int, Substring)] = []
        var number = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            if number > maxLines { break }
            out.append((number, line.hasSuffix("\r") ? line.dropLast() : line))
        }
        return out
    }
}
