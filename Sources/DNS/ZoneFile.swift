import CLDNS
import Glibc
import RelayCore

/// One record read from a zone file, ready for the wire: owner as lower-case dotted text (no
/// trailing dot), and the rest of the record after the owner name (type, class, TTL, length,
/// data, names uncompressed).
public struct ZoneRecord: Equatable, Sendable {
    public var owner: String
    public var type: UInt16
    public var ttl: UInt32
    /// TYPE, CLASS, TTL, RDLENGTH and RDATA as they go on the wire after an owner name.
    public var body: [UInt8]
    /// For CNAME: the target (lower-case dotted); for SOA: nil.
    public var target: String?
    /// Where it was written.
    public var file: String
    public var line: Int

    public init(owner: String, type: UInt16, ttl: UInt32, body: [UInt8], target: String?, file: String, line: Int) {
        self.owner = owner
        self.type = type
        self.ttl = ttl
        self.body = body
        self.target = target
        self.file = file
        self.line = line
    }
}

/// A zone file that cannot be used, with where and why.
public struct ZoneFileError: Error, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var reason: String
    public var description: String { line.map { "\(file):\($0): \(reason)" } ?? "\(file): \(reason)" }

    public init(file: String, line: Int?, reason: String) {
        self.file = file
        self.line = line
        self.reason = reason
    }
}

/// Reads zone files (RFC 1035 master format) with ldns: `$ORIGIN`, `$TTL`, relative names,
/// multi-line records and every type ldns knows. `$INCLUDE file [origin]` is expanded here,
/// relative to the including file (ldns leaves it to the caller), at most 8 levels deep; errors
/// name the file and line where the text came from.
public enum ZoneFile {
    /// The records of the zone file at `path`, with `origin` (dotted, as from the file name) as the
    /// starting `$ORIGIN`.
    public static func read(path: String, origin: String) throws(ZoneFileError) -> [ZoneRecord] {
        var lines: [(file: String, line: Int)] = []
        var text = ""
        try expand(path: path, depth: 0, into: &text, sources: &lines, origin: origin)
        return try parse(text: text, sources: lines, origin: origin, file: path)
    }

    /// The records of zone text held in memory (no `$INCLUDE`: nothing is read from disk), for
    /// tools and fuzz targets; errors name `file` and the line.
    public static func parse(text: String, origin: String, file: String = "-") throws(ZoneFileError) -> [ZoneRecord] {
        let count = text.utf8.reduce(0) { $0 + ($1 == 0x0a ? 1 : 0) } + 1
        return try parse(text: text, sources: (1...count).map { (file, $0) }, origin: origin, file: file)
    }

    private static func expand(path: String, depth: Int, into text: inout String, sources: inout [(file: String, line: Int)],
                               origin: String) throws(ZoneFileError) {
        guard depth <= 8 else { throw ZoneFileError(file: path, line: nil, reason: "$INCLUDE nested more than 8 deep") }
        let data: [UInt8]
        switch RegularFile.read(path) {
        case .success(let bytes): data = bytes
        case .failure(let failure): throw ZoneFileError(file: path, line: nil, reason: failure.reason)
        }
        guard !data.contains(0) else { throw ZoneFileError(file: path, line: nil, reason: "is not a text file (a NUL byte)") }
        guard let content = String(validating: data, as: UTF8.self) else {
            throw ZoneFileError(file: path, line: nil, reason: "is not valid UTF-8 text")
        }
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        var currentOrigin: String?
        for (number, line) in content.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
            if trimmed.uppercased().hasPrefix("$ORIGIN") { currentOrigin = String(trimmed) }
            if trimmed.uppercased().hasPrefix("$INCLUDE") {
                let fields = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard fields.count >= 2 else { throw ZoneFileError(file: path, line: number + 1, reason: "$INCLUDE needs a file name") }
                let name = String(fields[1])
                let included = name.hasPrefix("/") ? name : directory + "/" + name
                if fields.count >= 3 && !fields[2].hasPrefix(";") {
                    text += "$ORIGIN \(fields[2])\n"
                    sources.append((path, number + 1))
                }
                try expand(path: included, depth: depth + 1, into: &text, sources: &sources, origin: origin)
                // The including file's origin applies again after the included text (RFC 1035 §5.1).
                text += (currentOrigin ?? "$ORIGIN \(origin).") + "\n"
                sources.append((path, number + 1))
                continue
            }
            text += line + "\n"
            sources.append((path, number + 1))
        }
    }

    private static func parse(text: String, sources: [(file: String, line: Int)], origin: String, file: String) throws(ZoneFileError) -> [ZoneRecord] {
        var bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return [] }
        let result = bytes.withUnsafeMutableBytes { raw -> Result<[ZoneRecord], ZoneFileError> in
            guard let fp = fmemopen(raw.baseAddress, raw.count, "r") else {
                return .failure(ZoneFileError(file: file, line: nil, reason: "cannot be read (fmemopen)"))
            }
            defer { fclose(fp) }
            // ldns counts lines it has read, blank ones after a record included: a record's own
            // line is the first one after the previous count that holds something.
            let textLines = text.split(separator: "\n", omittingEmptySubsequences: false)
            let meaningful = textLines.map { line -> Bool in
                let t = line.drop(while: { $0 == " " || $0 == "\t" })
                return !(t.isEmpty || t.hasPrefix(";"))
            }
            return Result { () throws(ZoneFileError) -> [ZoneRecord] in
                try records(from: fp, sources: sources, meaningful: meaningful, origin: origin, file: file)
            }
        }
        return try result.get()
    }

    private static func records(from fp: UnsafeMutablePointer<FILE>, sources: [(file: String, line: Int)], meaningful: [Bool],
                                origin: String, file: String) throws(ZoneFileError) -> [ZoneRecord] {
        var ttl: UInt32 = 3600
        var originRDF: UnsafeMutablePointer<ldns_rdf>? = ldns_dname_new_frm_str(origin + ".")
        var previous: UnsafeMutablePointer<ldns_rdf>?
        defer {
            if let originRDF { ldns_rdf_deep_free(originRDF) }
            if let previous { ldns_rdf_deep_free(previous) }
        }
        var line: Int32 = 0
        var records: [ZoneRecord] = []
        guard let buffer = ldns_buffer_new(512) else { throw ZoneFileError(file: file, line: nil, reason: "out of memory") }
        defer { ldns_buffer_free(buffer) }
        /// Where the record read after line count `before` starts.
        func source(after before: Int32) -> (String, Int) {
            var i = Int(before)
            while i < meaningful.count - 1 && !meaningful[i] { i += 1 }
            i = max(0, min(i, sources.count - 1))
            return sources.isEmpty ? (file, i + 1) : sources[i]
        }
        while feof(fp) == 0 {
            var rr: UnsafeMutablePointer<ldns_rr>?
            let before = line
            let status = ldns_rr_new_frm_fp_l(&rr, fp, &ttl, &originRDF, &previous, &line)
            switch status {
            case LDNS_STATUS_OK:
                guard let rr else { continue }
                defer { ldns_rr_free(rr) }
                let (where_, at) = source(after: before)
                guard ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN else {
                    throw ZoneFileError(file: where_, line: at, reason: "only class IN is served")
                }
                guard let owner = ldns_rr_owner(rr), let ownerText = dottedName(owner) else {
                    throw ZoneFileError(file: where_, line: at, reason: "the owner name cannot be read")
                }
                ldns_buffer_clear(buffer)
                guard ldns_rr2buffer_wire(buffer, rr, Int32(LDNS_SECTION_ANSWER.rawValue)) == LDNS_STATUS_OK else {
                    throw ZoneFileError(file: where_, line: at, reason: "the record cannot be written in wire form")
                }
                let all = UnsafeRawBufferPointer(start: ldns_buffer_begin(buffer), count: ldns_buffer_position(buffer))
                let ownerLength = ldns_rdf_size(owner)
                // ldns keeps types as 32-bit numbers and reads TYPE70000; DNS has 16 bits (the
                // `zone` fuzz target found the conversion trapping).
                guard let type = UInt16(exactly: ldns_rr_get_type(rr).rawValue) else {
                    throw ZoneFileError(file: where_, line: at, reason: "the record type \(ldns_rr_get_type(rr).rawValue) is out of range (0-65535)")
                }
                var target: String?
                if type == 5, let rdf = ldns_rr_rdf(rr, 0) { target = dottedName(rdf) }
                records.append(ZoneRecord(owner: ownerText, type: type, ttl: ldns_rr_ttl(rr), body: Array(all[ownerLength...]),
                                          target: target, file: where_, line: at))
            case LDNS_STATUS_SYNTAX_EMPTY, LDNS_STATUS_SYNTAX_TTL, LDNS_STATUS_SYNTAX_ORIGIN:
                if let rr { ldns_rr_free(rr) }
                continue
            default:
                if let rr { ldns_rr_free(rr) }
                let (where_, at) = source(after: before)
                throw ZoneFileError(file: where_, line: at, reason: String(cString: ldns_get_errorstr_by_id(status)))
            }
        }
        return records
    }

    /// A name rdf as lower-case dotted text without the trailing dot ("" for the root).
    static func dottedName(_ rdf: UnsafeMutablePointer<ldns_rdf>) -> String? {
        guard let data = ldns_rdf_data(rdf) else { return nil }
        let size = ldns_rdf_size(rdf)
        var labels: [String] = []
        var offset = 0
        while offset < size {
            let length = Int(data[offset])
            if length == 0 { break }
            guard length < 64, offset + 1 + length <= size else { return nil }
            let label = UnsafeBufferPointer(start: data + offset + 1, count: length)
            labels.append(String(decoding: label.map { $0 >= 0x41 && $0 <= 0x5a ? $0 | 0x20 : $0 }, as: UTF8.self))
            offset += 1 + length
        }
        return labels.joined(separator: ".")
    }
}
