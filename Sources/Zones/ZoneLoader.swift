import DNS
import Glibc

/// Loads every `*.zone` file of a directory. The starting `$ORIGIN` of `home.lan.zone` is
/// `home.lan.`; the zone's apex is its SOA's owner. A file that fails is rejected whole: on a
/// reload the version of it in service stays (matched by file); at start-up there is none, and
/// the error is returned for the caller to refuse to start.
public enum ZoneLoader {
    public struct Outcome: Sendable {
        public var zones: LocalZones
        /// Files that failed, with file:line and why; their previous version (if any) is kept.
        public var errors: [ZoneFileError]
    }

    public static func load(directory: String, previous: LocalZones? = nil) -> Outcome {
        var zones: [Zone] = []
        var errors: [ZoneFileError] = []
        let files: [String]
        switch list(directory) {
        case .success(let names): files = names
        case .failure(let error): return Outcome(zones: previous ?? .empty, errors: [error])
        }
        for name in files {
            let path = directory + "/" + name
            let origin = String(name.dropLast(".zone".count)).lowercased()
            do {
                let records = try ZoneFile.read(path: path, origin: origin)
                zones.append(try Zone(file: path, records: records))
            } catch {
                errors.append(error)
                if let old = previous?.zones.first(where: { $0.file == path }) { zones.append(old) }
            }
        }
        // Two files for one apex: the first (by name) serves, the other is an error.
        var seen: Set<String> = []
        var unique: [Zone] = []
        for zone in zones {
            if seen.insert(zone.origin).inserted {
                unique.append(zone)
            } else {
                errors.append(ZoneFileError(file: zone.file, line: nil, reason: "zone \(zone.origin) is already served from another file"))
            }
        }
        return Outcome(zones: LocalZones(unique), errors: errors)
    }

    /// `*.zone` files in `directory`, sorted.
    private static func list(_ directory: String) -> Result<[String], ZoneFileError> {
        guard let dir = opendir(directory) else {
            return .failure(ZoneFileError(file: directory, line: nil, reason: errno == ENOENT ? "the zones directory does not exist" : "the zones directory cannot be read"))
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasSuffix(".zone") && !name.hasPrefix(".") { names.append(name) }
        }
        return .success(names.sorted())
    }
}
