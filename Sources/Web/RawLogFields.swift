import LinuxNet

/// Field values read straight from the bytes of a query log line, without a JSON parser: the
/// relay writes every line itself, keys in a fixed order and string values escaped, so the text
/// after `"key":"` up to the next unescaped quote is the (escaped) value. For the dashboard's
/// counting and pre-filtering, which see every line of a busy log; anything that needs the
/// exact entry parses it (`QueryLogEntry`). Bounded: a value longer than 1,024 bytes is not read.
enum RawLogFields {
    /// The escaped text of string field `key` (bytes of `"key":"`), or nil.
    static func string(_ line: ArraySlice<UInt8>, _ key: [UInt8]) -> ArraySlice<UInt8>? {
        guard let at = find(key, in: line) else { return nil }
        let start = at + key.count
        var i = start
        let end = min(line.endIndex, start + 1024)
        while i < end {
            if line[i] == 0x5C { i += 2; continue }  // a backslash escapes the next byte
            if line[i] == 0x22 { return line[start..<i] }
            i += 1
        }
        return nil
    }

    /// Where `needle` starts in `line`, or nil (glibc's memmem: a log line has a quote every few
    /// bytes, so a first-byte scan would stop everywhere).
    static func find(_ needle: [UInt8], in line: ArraySlice<UInt8>) -> Int? {
        guard !needle.isEmpty, needle.count <= line.count else { return nil }
        return line.withUnsafeBytes { haystack in
            needle.withUnsafeBytes { pattern in ByteSearch.find(pattern, in: haystack).map { line.startIndex + $0 } }
        }
    }

    static let time = Array("\"time\":\"".utf8)
    static let action = Array("\"action\":\"".utf8)
    static let qname = Array("\"qname\":\"".utf8)
    static let sni = Array("\"sni\":\"".utf8)
    static let client = Array("\"client\":\"".utf8)
    static let clientName = Array("\"client_name\":\"".utf8)
    static let server = Array("\"server\":\"".utf8)
    static let proto = Array("\"proto\":\"".utf8)
    static let qtype = Array("\"qtype\":\"".utf8)
    static let event = Array("\"event\":\"".utf8)

    /// The minute of an entry's time (`2026-12-02T04:16:47.479240Z` → seconds since the epoch of
    /// 04:16:00), or nil when the text is not such a time.
    static func minute(_ time: ArraySlice<UInt8>) -> Int? {
        guard time.count >= 16 else { return nil }
        func number(_ offset: Int, _ length: Int) -> Int? {
            var value = 0
            for k in 0..<length {
                let b = time[time.startIndex + offset + k]
                guard b >= 0x30 && b <= 0x39 else { return nil }
                value = value * 10 + Int(b - 0x30)
            }
            return value
        }
        guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2), let hour = number(11, 2), let minute = number(14, 2),
              (1970...9999).contains(year), (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60
        else { return nil }
        return (daysSinceEpoch(year: year, month: month, day: day) * 24 + hour) * 3600 + minute * 60
    }

    /// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
    /// days_from_civil).
    static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The address part of an endpoint's text (`10.53.1.2:5353` → `10.53.1.2`, `[fd53::2]:53` → `fd53::2`).
    static func address(_ endpoint: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        if endpoint.first == UInt8(ascii: "["), let close = endpoint.firstIndex(of: UInt8(ascii: "]")) {
            return endpoint[(endpoint.startIndex + 1)..<close]
        }
        if let colon = endpoint.lastIndex(of: UInt8(ascii: ":")) { return endpoint[endpoint.startIndex..<colon] }
        return endpoint
    }
}
