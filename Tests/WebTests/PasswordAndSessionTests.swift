import Foundation
import Testing
@testable import Web

/// The stored password, sessions and the login throttle: the parts of the dashboard's security
/// that do not need a socket.
@Suite struct PasswordAndSessionTests {
    @Test func aHashVerifiesItsPasswordAndNoOther() throws {
        let hash = try PasswordHash.make("correct horse", n: 1024)
        #expect(hash.verify("correct horse"))
        #expect(!hash.verify("correct hors"))
        #expect(!hash.verify(""))
        #expect(!hash.verify(String(repeating: "x", count: 5000)))
        // The stored line reads back to the same hash, and two hashes of one password differ (salt).
        #expect(try PasswordHash.parse(hash.line).get() == hash)
        #expect(try PasswordHash.make("correct horse", n: 1024).line != hash.line)
    }

    @Test(arguments: [
        "",
        "bcrypt$10$abc",
        "scrypt$16384$8$1$c2FsdHNhbHQ=",                          // five fields
        "scrypt$1000$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",  // N not a power of two
        "scrypt$1073741824$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==", // N too large
        "scrypt$16384$64$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",  // r too large
        "scrypt$16384$8$9$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",   // p too large
        "scrypt$16384$8$1$not base64!$aGFzaGhhc2hoYXNoaGFzaA==",
        "scrypt$16384$8$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==",           // salt too short
        "scrypt$16384$8$1$c2FsdHNhbHRzYWx0$aGFzaA==",                   // hash too short
        "scrypt$-1$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",
    ])
    func storedLinesThatAreNotOursAreRefused(line: String) {
        guard case .failure(let error) = PasswordHash.parse(line) else {
            Issue.record("accepted: \(line)")
            return
        }
        #expect(!error.reason.isEmpty)
    }

    @Test func theFileIsWrittenPrivatelyAndMissingOrBadFilesSayWhy() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("web-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("web-password").path
        guard case .failure(let missing) = PasswordHash.load(path: path) else { Issue.record("a missing file loaded"); return }
        #expect(missing.reason.contains("no password set"))
        let hash = try PasswordHash.make("sesame-sesame", n: 1024)
        try hash.store(path: path)
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(try PasswordHash.load(path: path).get() == hash)
        try "scrypt$oops\n".write(toFile: path, atomically: true, encoding: .utf8)
        guard case .failure(let bad) = PasswordHash.load(path: path) else { Issue.record("garbage loaded"); return }
        #expect(bad.reason.hasPrefix(path + ": "))
        guard case .failure(let directoryError) = PasswordHash.load(path: directory.path) else { Issue.record("a directory loaded"); return }
        #expect(directoryError.reason.contains("not a regular file"))
    }

    @Test func sessionsExpireWithoutUseAndTheOldestGivesWay() {
        var sessions = WebSessions(lifetimeSeconds: 60, capacity: 2)
        let second: UInt64 = 1_000_000_000
        let a = sessions.open(peer: "10.53.1.2", now: 0)
        #expect(a.token.count == 32 && a.csrf.count == 32 && a.token != a.csrf)
        #expect(sessions.session(a.token, now: 30 * second)?.csrf == a.csrf)
        // Used at 30 s: alive at 80 s, gone 60 s after its last use.
        #expect(sessions.session(a.token, now: 80 * second) != nil)
        #expect(sessions.session(a.token, now: 141 * second) == nil)
        let b = sessions.open(peer: "x", now: 200 * second)
        let c = sessions.open(peer: "y", now: 201 * second)
        let d = sessions.open(peer: "z", now: 202 * second)
        #expect(sessions.count == 2)
        #expect(sessions.session(b.token, now: 203 * second) == nil)
        #expect(sessions.session(c.token, now: 203 * second) != nil && sessions.session(d.token, now: 203 * second) != nil)
        sessions.close(c.token)
        #expect(sessions.session(c.token, now: 204 * second) == nil)
        // Tokens of the wrong shape are never looked up.
        #expect(sessions.session(nil, now: 0) == nil && sessions.session("", now: 0) == nil && sessions.session(d.token + "0", now: 0) == nil)
        #expect(WebSessions.same("abc", "abc") && !WebSessions.same("abc", "abd") && !WebSessions.same("abc", "abcd"))
    }

    @Test func wrongPasswordsSlowAnAddressThenEveryone() {
        var throttle = LoginThrottle(free: 3, maxDelaySeconds: 60, capacity: 4, globalFree: 10)
        let second: UInt64 = 1_000_000_000
        for _ in 0..<3 { throttle.failed("a", now: 0) }
        #expect(throttle.wait("a", now: 0) == 0)
        throttle.failed("a", now: 0)
        #expect(throttle.wait("a", now: 0) == 1 * second)
        throttle.failed("a", now: 1 * second)
        #expect(throttle.wait("a", now: 1 * second) == 2 * second)
        #expect(throttle.wait("b", now: 1 * second) == 0)
        for _ in 0..<20 { throttle.failed("a", now: 2 * second) }
        #expect(throttle.wait("a", now: 2 * second) == 60 * second)
        // By now everyone waits too (more than 10 failures in a row in all).
        #expect(throttle.wait("b", now: 2 * second) > 0)
        throttle.succeeded("a")
        #expect(throttle.wait("a", now: 2 * second) == 0 && throttle.wait("b", now: 2 * second) == 0)
        // At most `capacity` addresses are remembered.
        for i in 0..<10 { throttle.failed("p\(i)", now: 3 * second) }
        #expect((0..<10).filter { throttle.failures("p\($0)") > 0 }.count <= 4)
    }
}
