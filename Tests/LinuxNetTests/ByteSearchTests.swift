import LinuxNet
import Testing

@Suite struct ByteSearchTests {
    static func find(_ needle: String, _ haystack: String) -> Int? {
        Array(needle.utf8).withUnsafeBytes { n in Array(haystack.utf8).withUnsafeBytes { h in ByteSearch.find(n, in: h) } }
    }

    @Test func findsTheFirstOccurrenceOrNothing() {
        #expect(Self.find("\"action\":\"", #"{"time":"x","action":"blocked","action":"again"}"#) == 12)
        #expect(Self.find("end", "the end") == 4)
        #expect(Self.find("abc", "ab") == nil)
        #expect(Self.find("", "anything") == nil)
        #expect(Self.find("x", "") == nil)
        #expect(Self.find("zz", "a quiet line without it") == nil)
    }
}
