import Crypto
import CryptoExtras
import Foundation
import RelayCore

/// The dashboard's password as it is stored (`web.password_file`, written by `tproxy-relay
/// passwd`): one line `scrypt$N$r$p$salt$hash`, salt and hash in base64. scrypt because it is
/// memory-hard (16 MiB per attempt at the default N = 2^14, r = 8): a stolen file is slow to
/// attack on GPUs, and one check costs the relay tens of milliseconds on the web thread alone.
public struct PasswordHash: Equatable, Sendable {
    public var n: Int
    public var r: Int
    public var p: Int
    public var salt: [UInt8]
    public var hash: [UInt8]

    public static let defaultN = 1 << 14
    public static let minimumLength = 8
    public static let maximumLength = 1024

    /// Hashes `password` with a fresh random salt.
    public static func make(_ password: String, n: Int = defaultN) throws -> PasswordHash {
        var salt = [UInt8](repeating: 0, count: 16)
        for i in salt.indices { salt[i] = UInt8.random(in: 0...255) }
        let key = try KDF.Scrypt.deriveKey(from: Array(password.utf8), salt: salt, outputByteCount: 32, rounds: n, blockSize: 8, parallelism: 1)
        return PasswordHash(n: n, r: 8, p: 1, salt: salt, hash: key.withUnsafeBytes { Array($0) })
    }

    /// Whether `password` is the one hashed here; the comparison takes the same time wherever
    /// the bytes differ.
    public func verify(_ password: String) -> Bool {
        guard password.utf8.count <= Self.maximumLength,
              let key = try? KDF.Scrypt.deriveKey(from: Array(password.utf8), salt: salt, outputByteCount: hash.count, rounds: n,
                                                  blockSize: r, parallelism: p)
        else { return false }
        let derived = key.withUnsafeBytes { Array($0) }
        guard derived.count == hash.count else { return false }
        var difference: UInt8 = 0
        for i in hash.indices { difference |= derived[i] ^ hash[i] }
        return difference == 0
    }

    /// The stored line.
    public var line: String {
        "scrypt$\(n)$\(r)$\(p)$\(Data(salt).base64EncodedString())$\(Data(hash).base64EncodedString())"
    }

    /// Reads the stored line; nil with the reason when it is not one this version wrote. The
    /// cost parameters are bounded: a file anyone edited must not make a check take minutes or
    /// gigabytes.
    public static func parse(_ text: String) -> Result<PasswordHash, RelayError> {
        let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "scrypt" else {
            return .failure(RelayError(.invalidConfiguration, "not a password hash written by `tproxy-relay passwd` (expected scrypt$N$r$p$salt$hash)"))
        }
        guard let n = Int(parts[1]), n >= 1024, n <= 1 << 20, n & (n - 1) == 0,
              let r = Int(parts[2]), (1...32).contains(r), let p = Int(parts[3]), (1...4).contains(p), n * r * 128 <= 256 << 20
        else {
            return .failure(RelayError(.invalidConfiguration, "scrypt parameters out of bounds (N a power of two from 1024 to 2^20, r 1...32, p 1...4, at most 256 MiB)"))
        }
        guard let salt = Data(base64Encoded: String(parts[4])), salt.count >= 8,
              let hash = Data(base64Encoded: String(parts[5])), (16...64).contains(hash.count)
        else {
            return .failure(RelayError(.invalidConfiguration, "the salt or hash is not base64 of the expected length"))
        }
        return .success(PasswordHash(n: n, r: r, p: p, salt: Array(salt), hash: Array(hash)))
    }

    /// Reads the password file; the error names the file and why (missing, unreadable, not a
    /// hash, readable by others).
    public static func load(path: String) -> Result<PasswordHash, RelayError> {
        var info = stat()
        guard stat(path, &info) == 0 else {
            return .failure(RelayError(.invalidConfiguration, "\(path): no password set (run `tproxy-relay passwd`): \(String(cString: strerror(errno)))"))
        }
        guard info.st_mode & S_IFMT == S_IFREG else { return .failure(RelayError(.invalidConfiguration, "\(path) is not a regular file")) }
        guard info.st_size <= 4096, let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            return .failure(RelayError(.invalidConfiguration, "\(path) cannot be read as a password hash"))
        }
        return parse(text).mapError { RelayError($0.code, "\(path): \($0.reason)") }
    }

    /// Writes the line to `path` through a temporary file renamed over it (mode 0600), so that a
    /// relay reading it never sees half a hash.
    public func store(path: String) throws(RelayError) {
        let temporary = path + ".new"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw RelayError(.invalidConfiguration, "\(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array((line + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw RelayError(.invalidConfiguration, "\(path): cannot be written (\(reason))")
        }
    }
}
