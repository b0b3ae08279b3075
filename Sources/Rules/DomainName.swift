import RelayCore

/// Domain names as the rules see them: lower-case ASCII, dot-separated, no trailing dot.
public enum DomainName {
    /// Lower-cases and checks a name from a rule file; nil when it is not a host name
    /// (labels of letters, digits, `-` and `_`, 1–63 bytes each, 253 in all).
    public static func normalize<S: StringProtocol>(_ text: S) -> String? {
        var name = text.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        guard !name.isEmpty, name.utf8.count <= 253 else { return nil }
        var labelLength = 0
        for byte in name.utf8 {
            switch byte {
            case UInt8(ascii: "."):
                guard labelLength > 0 else { return nil }
                labelLength = 0
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
                labelLength += 1
                guard labelLength <= 63 else { return nil }
            default:
                return nil
            }
        }
        return labelLength > 0 ? name : nil
    }

    /// Writes the question name of a wire-format message as lower-case dotted text into `out`
    /// (at least 256 bytes) and returns its length; nil when it is malformed. No allocation.
    /// The labels are checked first (their length bytes are where the dots go), then the text is
    /// copied eight bytes at a time with its letters folded, and the dots put in: on the
    /// datapath for every query (the rule lookup, the query log).
    @inline(__always)
    public static func fromWire(_ message: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Int? {
        guard message.count > 12, let p = message.baseAddress, let o = out.baseAddress else { return nil }
        // The root label's offset; every length byte before it is in the message and ≤ 63.
        var root = 12
        while true {
            guard root < message.count else { return nil }
            let labelLength = Int(p.load(fromByteOffset: root, as: UInt8.self))
            if labelLength == 0 { break }
            guard labelLength <= 63 else { return nil }
            root += 1 + labelLength
        }
        // The text is the bytes after the first length byte up to the root label, each later
        // length byte becoming a dot.
        let length = max(0, root - 13)
        guard length <= out.count else { return nil }
        var i = 0
        while i + 8 <= length {
            o.storeBytes(of: ASCIICase.lowercased(word: p.loadUnaligned(fromByteOffset: 13 + i, as: UInt64.self)), toByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < length {
            o.storeBytes(of: ASCIICase.lowercased(p.load(fromByteOffset: 13 + i, as: UInt8.self)), toByteOffset: i, as: UInt8.self)
            i += 1
        }
        var dot = 13 + Int(p.load(fromByteOffset: 12, as: UInt8.self))
        while dot < root {
            o.storeBytes(of: UInt8(ascii: "."), toByteOffset: dot - 13, as: UInt8.self)
            dot += 1 + Int(p.load(fromByteOffset: dot, as: UInt8.self))
        }
        return length
    }

    /// `name` (normalized, dotted) in uncompressed wire form, root label included. (DNS has the
    /// same as `AliasAnswer.wireName`; Rules depends on RelayCore only, so it keeps its own.)
    public static func wire(_ name: String) -> [UInt8] {
        var out: [UInt8] = []
        for label in name.split(separator: ".") {
            out.append(UInt8(label.utf8.count))
            out.append(contentsOf: label.utf8)
        }
        out.append(0)
        return out
    }

    /// Whether `name` equals `domain` or lies below it.
    @inline(__always)
    static func isSubdomain(_ name: UnsafeRawBufferPointer, of domain: String) -> Bool {
        var domain = domain
        return domain.withUTF8 { d in
            guard name.count >= d.count else { return false }
            let start = name.count - d.count
            for i in 0..<d.count where name[start + i] != d[i] { return false }
            return start == 0 || name[start - 1] == UInt8(ascii: ".")
        }
    }
}
