import Testing
import DNS
import RelayCore
@testable import Pipeline

/// The cache on its own, playing the upstream: answers are built byte by byte, the clock is a
/// number the test moves.
@Suite struct AnswerCacheTests {
    static let server = Endpoint(address: IPAddress("10.53.2.53")!, port: 53)

    /// An answer to `query`: `rcode`, A records with `ttls` (10.53.9.x), and optionally an SOA in
    /// the authority section (TTL 300, minimum `soaMinimum`).
    static func answer(to query: [UInt8], rcode: UInt8 = 0, ttls: [UInt32] = [60], soaMinimum: UInt32? = nil, tc: Bool = false) -> [UInt8] {
        let end = query.withUnsafeBytes { Question.end(in: $0)! }
        var out = Array(query[0..<end])
        out[2] = 0x81 | (tc ? 0x02 : 0)
        out[3] = 0x80 | rcode
        func u32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        for (i, ttl) in ttls.enumerated() { out += [0xc0, 0x0c, 0, 1, 0, 1] + u32(ttl) + [0, 4, 10, 53, 9, UInt8(i)] }
        var authority = 0
        if let minimum = soaMinimum {
            let rdata: [UInt8] = [0, 0] + u32(1) + u32(3600) + u32(600) + u32(86400) + u32(minimum)
            out += [0, 0, 6, 0, 1] + u32(300) + [0, UInt8(rdata.count)] + rdata
            authority = 1
        }
        out[6] = 0; out[7] = UInt8(ttls.count); out[8] = 0; out[9] = UInt8(authority); out[10] = 0; out[11] = 0
        return out
    }

    static func query(_ name: String, id: UInt16 = 1, type: UInt16 = 1) -> [UInt8] { QueryBuilder.query(name: name, type: type, id: id)! }

    func store(_ cache: AnswerCache, _ answer: [UInt8], flags: UInt8 = 0, server: Endpoint = server, now: UInt32) {
        let end = answer.withUnsafeBytes { Question.end(in: $0)! }
        answer.withUnsafeBytes { cache.insert($0, end: end, flags: flags, key: CacheKey(server: server), now: now) }
    }

    func lookup(_ cache: AnswerCache, _ query: [UInt8], flags: UInt8 = 0, server: Endpoint = server, now: UInt32) -> [UInt8]? {
        let end = query.withUnsafeBytes { Question.end(in: $0)! }
        var out = [UInt8](repeating: 0, count: AnswerCache.slotSize)
        let result = query.withUnsafeBytes { q in out.withUnsafeMutableBytes { cache.lookup(q, end: end, flags: flags, key: CacheKey(server: server), now: now, into: $0) } }
        guard case .hit(let length, _) = result else { return nil }
        return Array(out[0..<length])
    }

    static func ttl(_ answer: [UInt8], record: Int = 0) -> UInt32 {
        let end = answer.withUnsafeBytes { Question.end(in: $0)! }
        let at = end + record * 16 + 6
        return answer[at..<(at + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }

    @Test func aHitCarriesTheClientsIDCaseAndAgedTTLs() throws {
        let cache = AnswerCache(settings: .init())
        store(cache, Self.answer(to: Self.query("www.lab.test"), ttls: [60, 30]), now: 100)
        let hit = try #require(lookup(cache, Self.query("WWW.Lab.test", id: 0xbeef), now: 110))
        #expect(hit[0] == 0xbe && hit[1] == 0xef)
        #expect(Array(hit[13..<16]) == Array("WWW".utf8))
        #expect(Self.ttl(hit, record: 0) == 50 && Self.ttl(hit, record: 1) == 20)
        #expect(lookup(cache, Self.query("www.lab.test"), now: 130) == nil, "the shortest TTL (30) has run out")
    }

    @Test func theKeyHoldsTypeFlagsAndServer() {
        let cache = AnswerCache(settings: .init())
        store(cache, Self.answer(to: Self.query("www.lab.test")), flags: 1, now: 0)
        #expect(lookup(cache, Self.query("www.lab.test"), flags: 0, now: 1) == nil)
        #expect(lookup(cache, Self.query("www.lab.test"), flags: 1, now: 1) != nil)
        #expect(lookup(cache, Self.query("www.lab.test"), flags: 1, server: Endpoint(address: IPAddress("10.53.3.53")!, port: 53), now: 1) == nil)
        #expect(lookup(cache, Self.query("www.lab.test", type: 28), flags: 1, now: 1) == nil)
    }

    struct Kept: Sendable, CustomTestStringConvertible {
        var what: String
        var rcode: UInt8 = 0
        var ttls: [UInt32] = [60]
        var soa: UInt32?
        var tc = false
        /// Seconds it is kept; nil: not kept.
        var lifetime: UInt32?
        var testDescription: String { what }
    }

    static let kept: [Kept] = [
        Kept(what: "positive", lifetime: 60),
        Kept(what: "NXDOMAIN with SOA: min(SOA TTL 300, minimum 30)", rcode: 3, ttls: [], soa: 30, lifetime: 30),
        Kept(what: "NODATA with SOA, capped by negative_ttl 120", rcode: 0, ttls: [], soa: 900, lifetime: 120),
        Kept(what: "NXDOMAIN without SOA", rcode: 3, ttls: [], soa: nil, lifetime: nil),
        Kept(what: "SERVFAIL", rcode: 2, lifetime: nil),
        Kept(what: "REFUSED", rcode: 5, lifetime: nil),
        Kept(what: "truncated", tc: true, lifetime: nil),
        Kept(what: "TTL 0", ttls: [0], lifetime: nil),
        Kept(what: "TTL above max_ttl 3600", ttls: [86400], lifetime: 3600),
    ]

    @Test(arguments: kept)
    func whatIsKeptAndForHowLong(_ c: Kept) {
        let cache = AnswerCache(settings: .init(maxTTL: 3600, negativeTTL: 120))
        store(cache, Self.answer(to: Self.query("x.lab.test"), rcode: c.rcode, ttls: c.ttls, soaMinimum: c.soa, tc: c.tc), now: 1000)
        if let lifetime = c.lifetime {
            #expect(lookup(cache, Self.query("x.lab.test"), now: 1000 + lifetime - 1) != nil)
            #expect(lookup(cache, Self.query("x.lab.test"), now: 1000 + lifetime) == nil)
        } else {
            #expect(lookup(cache, Self.query("x.lab.test"), now: 1000) == nil)
            #expect(cache.count == 0)
        }
    }

    @Test func minTTLRaisesShortTTLs() throws {
        let cache = AnswerCache(settings: .init(minTTL: 300))
        store(cache, Self.answer(to: Self.query("x.lab.test"), ttls: [5]), now: 0)
        let hit = try #require(lookup(cache, Self.query("x.lab.test"), now: 100))
        #expect(Self.ttl(hit) == 200)
    }

    @Test func staleAnswersComeOnlyInsideTheWindowWithTTL30() throws {
        let cache = AnswerCache(settings: .init(serveStaleSeconds: 100))
        store(cache, Self.answer(to: Self.query("x.lab.test"), ttls: [10]), now: 0)
        let query = Self.query("x.lab.test")
        let end = query.withUnsafeBytes { Question.end(in: $0)! }
        var out = [UInt8](repeating: 0, count: AnswerCache.slotSize)
        func stale(_ now: UInt32) -> Int? {
            query.withUnsafeBytes { q in out.withUnsafeMutableBytes { cache.stale(q, end: end, flags: 0, key: CacheKey(server: Self.server), now: now, into: $0) } }
        }
        #expect(lookup(cache, query, now: 20) == nil)
        let length = try #require(stale(20))
        #expect(Self.ttl(Array(out[0..<length])) == 30)
        #expect(stale(109) != nil)
        #expect(stale(110) == nil)
    }

    @Test func theBoundHoldsAndPopularEntriesSurvive() {
        let cache = AnswerCache(settings: .init(entries: 50))
        store(cache, Self.answer(to: Self.query("popular.lab.test")), now: 0)
        for i in 0..<1000 {
            store(cache, Self.answer(to: Self.query("n\(i).lab.test")), now: 0)
            _ = lookup(cache, Self.query("popular.lab.test"), now: 0)  // a hit sets its bit each time round
        }
        #expect(cache.count == 50)
        #expect(cache.evicted == 951)
        #expect(lookup(cache, Self.query("popular.lab.test"), now: 1) != nil)
        #expect(lookup(cache, Self.query("n999.lab.test"), now: 1) != nil)
        #expect(lookup(cache, Self.query("n0.lab.test"), now: 1) == nil)
    }

    @Test func garbageIsNotKept() {
        let cache = AnswerCache(settings: .init())
        var answer = Self.answer(to: Self.query("x.lab.test"), ttls: [60])
        answer[7] = 9  // ANCOUNT says 9, one record follows
        store(cache, answer, now: 0)
        #expect(cache.count == 0)
        let big = Self.answer(to: Self.query("x.lab.test"), ttls: [UInt32](repeating: 60, count: 80))
        store(cache, big, now: 0)
        #expect(cache.count == 0 && cache.tooLarge == 1)
    }
}
