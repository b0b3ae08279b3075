import Foundation
import Logging
import RelayCore
import Testing
@testable import QueryLog

/// The writer thread against rings it is handed: every record written once, the rings merged into
/// one timeline, a ring that wraps, a full ring that refuses and counts. The file is read back.
@Suite struct QueryLogWriterTests {
    static func path() -> String { NSTemporaryDirectory() + "querylog-writer-\(UUID().uuidString).jsonl" }

    static func writer(_ path: String) -> QueryLogWriter {
        QueryLogWriter(settings: .init(path: path), lists: [], logger: Logger(label: "test"))
    }

    /// Puts a record named `name`, answered at `answered` µs (arrival + duration), in `ring`.
    static func push(_ ring: QueryLogRing, name: String, answered: UInt64) -> Bool {
        guard let (record, bytes) = ring.reserve() else { return false }
        record.pointee = QueryLogRecord()
        record.pointee.time = answered - 7
        record.pointee.durationMicros = 7
        record.pointee.qtype = 1
        record.pointee.nameLength = UInt8(name.utf8.count)
        for (i, b) in name.utf8.enumerated() { bytes[i] = b }
        ring.commit()
        return true
    }

    static func names(in path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            let object = try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            return object?["qname"] as? String ?? "?"
        }
    }

    @Test func ringsAreMergedByAnswerTime() throws {
        let path = Self.path()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = Self.writer(path)
        let rings = (0..<3).map { _ in writer.makeRing(capacity: 64) }
        // Ring k answers at base + 3i + k: the timeline interleaves them one by one. Ring 2 also
        // has a burst after the others have finished.
        let base: UInt64 = 1_795_727_612_000_000
        for i in 0..<40 {
            for (k, ring) in rings.enumerated() {
                #expect(Self.push(ring, name: "q\(3 * i + k).test", answered: base + UInt64(3 * i + k)))
            }
        }
        for i in 120..<140 { #expect(Self.push(rings[2], name: "q\(i).test", answered: base + UInt64(i))) }
        try writer.start()
        writer.stop()
        #expect(try Self.names(in: path) == (0..<140).map { "q\($0).test" })
    }

    @Test func aRingThatWrapsKeepsEveryRecordOnce() throws {
        let path = Self.path()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = Self.writer(path)
        let ring = writer.makeRing(capacity: 64)
        try writer.start()
        var expected: [String] = []
        for round in 0..<5 {
            for i in 0..<50 {
                let name = "r\(round)-\(i).test"
                #expect(Self.push(ring, name: name, answered: 1_795_727_612_000_000 + UInt64(round * 100 + i)))
                expected.append(name)
            }
            while ring.waiting > 0 { usleep(1000) }  // drained: the next 50 wrap around the ring
        }
        writer.stop()
        #expect(try Self.names(in: path) == expected)
    }

    @Test func aFullRingRefusesAndCounts() throws {
        let path = Self.path()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = Self.writer(path)
        let ring = writer.makeRing(capacity: 64)
        for i in 0..<64 { #expect(Self.push(ring, name: "f\(i).test", answered: 1_795_727_612_000_000 + UInt64(i))) }
        #expect(!Self.push(ring, name: "refused.test", answered: 1_795_727_612_000_100))
        #expect(ring.dropped.load(ordering: .relaxed) == 1)
        try writer.start()
        writer.stop()
        // The 64 entries, and the log's own status line with the drop.
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 65)
        #expect(lines.filter { $0.contains("\"qname\":\"f") }.count == 64)
        #expect(lines.last?.contains("\"log\":\"status\",\"written\":64,\"dropped\":1}") == true)
        #expect(writer.summary == "query log: 64 entries written, 1 dropped")
    }
}
