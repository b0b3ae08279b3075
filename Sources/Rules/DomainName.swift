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
    @inline(__always)
    public static func fromWire(_ message: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Int? {
        guard message.count > 12, let p = message.baseAddress, let o = out.baseAddress else { return nil }
        var offset = 12
        var length = 0
        while offset < message.count {
            let labelLength = Int(p.load(fromByteOffset: offset, as: UInt8.self))
            if labelLength == 0 { return length }
            guard labelLength <= 63, offset + 1 + labelLength <= message.count, length + labelLength + 1 <= out.count else { return nil }
            if length > 0 {
                o.storeBytes(of: UInt8(ascii: "."), toByteOffset: length, as: UInt8.self)
                length += 1
            }
            for i in 0..<labelLength {
                var c = p.load(fromByteOffset: offset + 1 + i, as: UInt8.self)
                if c >= 0x41 && c <= 0x5a { c |= 0x20 }
                o.storeBytes(of: c, toByteOffset: length, as: UInt8.self)
                length += 1
            }
            offset += 1 + labelLength
        }
        return nil
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
