import Foundation

/// Who is logged in: random session tokens (128 bits, sent only as an `HttpOnly;
/// SameSite=Strict` cookie), each with its own CSRF token that every state-changing request
/// must repeat in `X-CSRF-Token`. A session ends after `lifetime` seconds without use, at
/// logout, or when `capacity` newer ones push it out. Held in memory on the web thread alone: a
/// restart logs everyone out.
struct WebSessions {
    struct Session {
        var csrf: String
        var lastUse: UInt64
        var created: UInt64
        var peer: String
    }

    private var sessions: [String: Session] = [:]
    let lifetime: UInt64
    let capacity: Int

    init(lifetimeSeconds: Int, capacity: Int = 64) {
        lifetime = UInt64(lifetimeSeconds) * 1_000_000_000
        self.capacity = capacity
    }

    /// A new session; the oldest one gives way when all are taken.
    mutating func open(peer: String, now: UInt64) -> (token: String, csrf: String) {
        expire(now: now)
        if sessions.count >= capacity, let oldest = sessions.min(by: { $0.value.lastUse < $1.value.lastUse })?.key {
            sessions.removeValue(forKey: oldest)
        }
        let token = Self.randomToken(), csrf = Self.randomToken()
        sessions[token] = Session(csrf: csrf, lastUse: now, created: now, peer: peer)
        return (token, csrf)
    }

    /// The session of a cookie's token, still alive (its use is recorded), or nil.
    mutating func session(_ token: String?, now: UInt64) -> Session? {
        guard let token, token.utf8.count == 32, var session = sessions[token] else { return nil }
        guard now &- session.lastUse < lifetime else {
            sessions.removeValue(forKey: token)
            return nil
        }
        session.lastUse = now
        sessions[token] = session
        return session
    }

    mutating func close(_ token: String?) {
        if let token { sessions.removeValue(forKey: token) }
    }

    var count: Int { sessions.count }

    private mutating func expire(now: UInt64) {
        sessions = sessions.filter { now &- $0.value.lastUse < lifetime }
    }

    /// 16 random bytes as 32 hex digits (the system's generator).
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// Whether two tokens are equal, in a time that does not depend on where they differ.
    static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for i in x.indices { difference |= x[i] ^ y[i] }
        return difference == 0
    }
}
