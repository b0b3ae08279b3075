import Testing
@testable import DNS

/// `RecordWalker.answersOfCheckedMessage` (the query log's reading of answers the relay checked
/// or built) sees the answer records `walk` sees, and on any bytes at all reads nothing outside
/// the message.
@Suite struct RecordWalkerTests {
    static func answer(_ name: String, records: [(type: UInt16, data: [UInt8])], compressed: Bool, extra: Int = 0) -> [UInt8] {
        var m = QueryBuilder.query(name: name, type: 1, id: 1)!
        m[2] = 0x81; m[3] = 0x80
        m[7] = UInt8(records.count)
        let owner: [UInt8] = compressed ? [0xc0, 0x0c] : Array(m[12..<(m.count - 4)])
        for r in records {
            m += owner + [UInt8(r.type >> 8), UInt8(r.type & 0xff), 0, 1, 0, 0, 0, 60, UInt8(r.data.count >> 8), UInt8(r.data.count & 0xff)] + r.data
        }
        if extra > 0 {
            m[11] = 1
            m += [0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]  // OPT in the additional section
        }
        return m
    }

    static func seen(_ message: [UInt8], checked: Bool) -> [[Int]] {
        message.withUnsafeBytes { m in
            guard let end = Question.end(in: m) else { return [] }
            var out: [[Int]] = []
            if checked {
                RecordWalker.answersOfCheckedMessage(m, questionEnd: end) { out.append([$0.nameOffset, Int($0.type), $0.ttlOffset, $0.dataOffset, $0.dataLength]) }
            } else {
                _ = RecordWalker.walk(m, questionEnd: end) { r in
                    if r.section == 0 { out.append([r.nameOffset, Int(r.type), r.ttlOffset, r.dataOffset, r.dataLength]) }
                }
            }
            return out
        }
    }

    @Test(arguments: [true, false])
    func theAnswersAreThoseWalkSees(compressed: Bool) {
        let records: [(type: UInt16, data: [UInt8])] = [(5, [3, 0x77, 0x77, 0x77, 0xc0, 0x0c]), (1, [10, 53, 9, 1]), (28, [UInt8](repeating: 0xfd, count: 16)),
                                                        (16, [3, 0x61, 0x62, 0x63])]
        for count in 0...records.count {
            let message = Self.answer("www.Lab.test", records: Array(records[0..<count]), compressed: compressed, extra: count % 2)
            let walked = Self.seen(message, checked: false)
            #expect(walked.count == count)
            #expect(Self.seen(message, checked: true) == walked)
        }
    }

    /// Random bytes after a valid question, and every prefix of a valid answer: no read outside
    /// the message (each is copied into an allocation of exactly its size), the walk just stops.
    @Test func anyBytesAreReadWithinTheMessage() {
        var random = SystemRandomNumberGenerator()
        let valid = Self.answer("a.lab.test", records: [(1, [1, 2, 3, 4]), (1, [5, 6, 7, 8])], compressed: true, extra: 1)
        var messages = (0...valid.count).map { Array(valid[0..<$0]) }
        let questionEnd = valid.withUnsafeBytes { Question.end(in: $0)! }
        for _ in 0..<5_000 {
            var m = Array(valid[0..<questionEnd])
            m[7] = UInt8.random(in: 0...255, using: &random)
            m += (0..<Int.random(in: 0...60, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            messages.append(m)
        }
        var records = 0
        for message in messages {
            let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: message.count, alignment: 1)
            defer { copy.deallocate() }
            copy.copyBytes(from: message)
            let m = UnsafeRawBufferPointer(copy)
            guard let end = Question.end(in: m) else { continue }
            RecordWalker.answersOfCheckedMessage(m, questionEnd: end) { r in
                #expect(r.dataOffset + r.dataLength <= m.count && r.ttlOffset + 4 <= m.count)
                records += 1
            }
        }
        #expect(records > 0)
    }
}
