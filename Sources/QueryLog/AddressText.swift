import Glibc
import RelayCore

/// Addresses and endpoints as the query log writes them: `10.53.1.2:40000`, `[fd53::2]:53`.
/// Every line holds two to six addresses, so IPv4 octets come from a table (text and length in
/// one word, stored with one write) rather than from divisions. IPv6 is RFC 5952: lower-case hex
/// without leading zeros, the longest run of two or more zero groups (the first of equal runs) as
/// `::`; addresses whose first 80 bits are zero (`::`, `::1`, the IPv4-mapped and -compatible
/// forms) go through inet_ntop, which writes the embedded IPv4 forms. Owned by one thread; freed
/// with `deallocate()`.
struct AddressText {
    /// Octet 0–255: its digits in the low bytes (in memory order) and their count in the top byte.
    private let octets: UnsafeMutablePointer<UInt32>

    init() {
        octets = .allocate(capacity: 256)
        for value in 0..<256 {
            let digits = Array(String(value).utf8)
            var word = UInt32(digits.count) << 24
            for (i, digit) in digits.enumerated() { word |= UInt32(digit) << (8 * i) }
            octets[value] = word
        }
    }

    func deallocate() { octets.deallocate() }

    /// `address:port`, or `[address]:port` for IPv6.
    @inline(__always)
    func append(_ endpoint: Endpoint, to out: inout LineBuffer) {
        if endpoint.address.isIPv6 {
            out.append(UInt8(ascii: "["))
            append(endpoint.address, to: &out)
            out.append(UInt8(ascii: "]"))
        } else {
            append(endpoint.address, to: &out)
        }
        out.append(UInt8(ascii: ":"))
        out.appendDecimal(UInt64(endpoint.port))
    }

    @inline(__always)
    func append(_ address: IPAddress, to out: inout LineBuffer) {
        switch address {
        case .v4(let a):
            // rawValue holds the bytes in network order: the first octet is the lowest byte.
            let raw = a.rawValue.littleEndian
            let p = UnsafeMutableRawPointer(out.reserve(20))
            var n = 0
            for i in 0..<4 {
                let word: UInt32 = octets[Int((raw >> UInt32(8 * i)) & 0xff)]
                let length: UInt32 = word >> 24
                let dot: UInt32 = 0x2e << (8 * length)
                p.storeBytes(of: (word & 0x00ff_ffff) | dot, toByteOffset: n, as: UInt32.self)
                n += Int(length) + 1
            }
            out.advance(by: n - 1)  // no dot after the last octet
        case .v6(let a):
            appendIPv6(a, to: &out)
        }
    }

    private func appendIPv6(_ a: IPv6Address, to out: inout LineBuffer) {
        // The 16 bytes in network order: `high` then `low`, each as loaded from the wire.
        var groups: (UInt16, UInt16, UInt16, UInt16, UInt16, UInt16, UInt16, UInt16) = (0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &groups) { raw in
            raw.storeBytes(of: a.high, as: UInt64.self)
            raw.storeBytes(of: a.low, toByteOffset: 8, as: UInt64.self)
        }
        withUnsafeBytes(of: groups) { raw in
            func group(_ i: Int) -> UInt16 { UInt16(bigEndian: raw.load(fromByteOffset: i * 2, as: UInt16.self)) }
            if (0..<5).allSatisfy({ group($0) == 0 }) {
                appendWithInetNtop(a, to: &out)
                return
            }
            var bestStart = -1, bestLength = 0, runStart = -1
            for i in 0...8 {
                if i < 8 && group(i) == 0 {
                    if runStart < 0 { runStart = i }
                } else if runStart >= 0 {
                    if i - runStart > bestLength { bestStart = runStart; bestLength = i - runStart }
                    runStart = -1
                }
            }
            if bestLength < 2 { bestStart = -1 }
            let p = out.reserve(40)
            var n = 0
            var i = 0
            while i < 8 {
                if i == bestStart {
                    // "::" — one colon here, the other is the previous group's (or a second one
                    // when the run starts the address).
                    p[n] = UInt8(ascii: ":")
                    if i == 0 { p[n + 1] = UInt8(ascii: ":"); n += 1 }
                    n += 1
                    i += bestLength
                    continue
                }
                let g = group(i)
                var shift = g >= 0x1000 ? 12 : g >= 0x100 ? 8 : g >= 0x10 ? 4 : 0
                while shift >= 0 {
                    let nibble = UInt8((g >> UInt16(shift)) & 0xf)
                    p[n] = nibble < 10 ? 48 + nibble : 87 + nibble
                    n += 1
                    shift -= 4
                }
                if i < 7 { p[n] = UInt8(ascii: ":"); n += 1 }
                i += 1
            }
            out.advance(by: n)
        }
    }

    private func appendWithInetNtop(_ a: IPv6Address, to out: inout LineBuffer) {
        var raw = in6_addr()
        withUnsafeMutableBytes(of: &raw) { bytes in
            bytes.storeBytes(of: a.high, as: UInt64.self)
            bytes.storeBytes(of: a.low, toByteOffset: 8, as: UInt64.self)
        }
        var text = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))  // 48 bytes ≥ INET6_ADDRSTRLEN
        withUnsafeMutableBytes(of: &text) { buffer in
            let chars = buffer.baseAddress!.assumingMemoryBound(to: CChar.self)
            guard inet_ntop(AF_INET6, &raw, chars, socklen_t(buffer.count)) != nil else { return }
            out.append(UnsafeRawBufferPointer(start: buffer.baseAddress, count: strlen(chars)))
        }
    }
}
