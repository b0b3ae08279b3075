import RelayCore

/// A hosts-format file (`/etc/hosts`, `/etc/hosts.d/lan`): `ADDRESS NAME [ALIAS...]`, `#`
/// comments. The first name of a line is the address's name (the canonical one, as `getent`
/// gives it); an address on several lines keeps its first.
public enum HostsFile {
    public static func parse(_ bytes: [UInt8], file: String) -> NameFileContents {
        var out = NameFileContents()
        var seen = Set<IPAddress>()
        for (number, raw) in NameFileContents.lines(bytes) {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let first = fields.first else { continue }
            guard let address = IPAddress(String(first)) else {
                out.problems.append(NameFileProblem(file: file, line: number, reason: "'\(first.prefix(64))' is not an IP address"))
                continue
            }
            guard fields.count >= 2 else {
                out.problems.append(NameFileProblem(file: file, line: number, reason: "no name after \(first)"))
                continue
            }
            guard let name = ClientNameText.normalize(fields[1]) else {
                out.problems.append(NameFileProblem(file: file, line: number, reason: "'\(fields[1].prefix(64))' is not a host name"))
                continue
            }
            guard seen.insert(address).inserted else { continue }
            out.names.append((address, name))
        }
        return out
    }
}
