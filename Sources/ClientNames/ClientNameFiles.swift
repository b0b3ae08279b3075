import RelayCore

/// The files of `clients.names` (hosts files, then lease files) read into one table: what the
/// relay's names thread publishes and what `explain` resolves a client with, so the two never
/// disagree about who is who.
public enum ClientNameFiles {
    /// One reading of every file.
    public struct Reading: Sendable {
        public var table: ClientNameTable
        /// Lines not used, per file read, in order.
        public var problems: [(path: String, problems: [NameFileProblem])] = []
        /// Files that could not be read, and why.
        public var unreadable: [(path: String, reason: String)] = []
    }

    /// Files larger than this are not read (a names file is kilobytes; a mistake is not).
    public static let maxFileBytes = 32 << 20

    public static func read(hosts: [String], leases: [String]) -> Reading {
        var parts: [(source: ClientNameTable.Source, contents: NameFileContents)] = []
        var reading = Reading(table: .empty)
        for (source, paths) in [(ClientNameTable.Source.hosts, hosts), (.leases, leases)] {
            for path in paths {
                switch RegularFile.read(path, limit: maxFileBytes) {
                case .success(let bytes):
                    let contents = source == .hosts ? HostsFile.parse(bytes, file: path) : LeaseFile.parse(bytes, file: path)
                    if !contents.problems.isEmpty { reading.problems.append((path, contents.problems)) }
                    parts.append((source, contents))
                case .failure(let failure):
                    reading.unreadable.append((path, failure.reason))
                }
            }
        }
        reading.table = ClientNameTable(parts)
        return reading
    }
}
