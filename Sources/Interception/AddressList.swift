import Glibc
import RelayCore

/// A file of addresses and prefixes (`bypass.block_addresses`): one a line, `#`, `!` or `;`
/// comments, blank lines. A line that is not an address or a CIDR is rejected with its line
/// number and the rest is kept, as with rule lists.
public struct AddressList: Equatable, Sendable {
    public var path: String
    public var prefixes: [IPPrefix]
    public var rejected: [(line: Int, text: String)]

    /// At most this many entries per file: the set goes to the kernel in one batch.
    public static let maxEntries = 16_384

    public static func == (a: AddressList, b: AddressList) -> Bool {
        a.path == b.path && a.prefixes == b.prefixes && a.rejected.map(\.line) == b.rejected.map(\.line)
    }

    /// Reads `path`; throws when it cannot be read, is not text, or holds too many entries.
    public static func load(_ path: String) throws(RelayError) -> AddressList {
        switch RegularFile.read(path, limit: 4 << 20) {
        case .success(let bytes):
            guard !bytes.contains(0) else { throw RelayError(.invalidConfiguration, "\(path) is not a text file (a NUL byte)") }
            return try parse(String(decoding: bytes, as: UTF8.self), path: path)
        case .failure(let failure):
            throw RelayError(.invalidConfiguration, "\(path) \(failure.reason)")
        }
    }

    static func parse(_ text: String, path: String) throws(RelayError) -> AddressList {
        var list = AddressList(path: path, prefixes: [], rejected: [])
        var number = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            var line = raw
            if let mark = line.firstIndex(where: { $0 == "#" || $0 == "!" || $0 == ";" }) { line = line[..<mark] }
            let trimmed = String(line.drop(while: { $0 == " " || $0 == "\t" || $0 == "\r" }).reversed().drop(while: { $0 == " " || $0 == "\t" || $0 == "\r" }).reversed())
            if trimmed.isEmpty { continue }
            guard let prefix = IPPrefix(trimmed) else {
                list.rejected.append((number, String(trimmed.prefix(80))))
                continue
            }
            list.prefixes.append(prefix)
            guard list.prefixes.count <= maxEntries else {
                throw RelayError(.invalidConfiguration, "\(path): more than \(maxEntries) addresses (line \(number))")
            }
        }
        return list
    }

    /// The IPv4 prefixes as merged, non-overlapping closed ranges (host order), sorted.
    public static func rangesV4(_ prefixes: [IPPrefix]) -> [ClosedRange<UInt32>] {
        var ranges: [ClosedRange<UInt32>] = []
        for prefix in prefixes {
            guard case .v4(let a) = prefix.address else { continue }
            let start = UInt32(bigEndian: a.rawValue)
            let size: UInt32 = prefix.length == 0 ? .max : (UInt32(1) << (32 - prefix.length)) &- 1
            ranges.append(start...(start | size))
        }
        return merge(ranges) { $0 == .max ? nil : $0 + 1 }
    }

    /// The IPv6 prefixes as merged closed ranges of (high, low) host-order pairs, sorted.
    public static func rangesV6(_ prefixes: [IPPrefix]) -> [ClosedRange<UInt128>] {
        var ranges: [ClosedRange<UInt128>] = []
        for prefix in prefixes {
            guard case .v6(let a) = prefix.address else { continue }
            let start = UInt128(UInt64(bigEndian: a.high)) << 64 | UInt128(UInt64(bigEndian: a.low))
            let hostBits = 128 - prefix.length
            let size: UInt128 = hostBits == 128 ? .max : (UInt128(1) << hostBits) &- 1
            ranges.append(start...(start | size))
        }
        return merge(ranges) { $0 == .max ? nil : $0 + 1 }
    }

    /// Sorts and merges overlapping or touching ranges.
    static func merge<T: Comparable>(_ input: [ClosedRange<T>], successor: (T) -> T?) -> [ClosedRange<T>] {
        var out: [ClosedRange<T>] = []
        for range in input.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, let next = successor(last.upperBound), range.lowerBound <= next {
                if range.upperBound > last.upperBound { out[out.count - 1] = last.lowerBound...range.upperBound }
            } else if let last = out.last, successor(last.upperBound) == nil {
                continue  // the last range already reaches the end of the space
            } else {
                out.append(range)
            }
        }
        return out
    }
}
