import Rules

/// Rule texts as JSON strings, by list and line, for the query log: a blocked-heavy load logs a
/// different rule per query, so the lookup is an array index (one per list, grown to the highest
/// line seen) into one arena of texts rather than a hash of small arrays. Each list's lines are
/// read back through `RuleText` once and kept until the list changes on disk or the arena passes
/// `arenaLimit` (then it starts over). Writer thread only.
struct RuleTextCache {
    /// Per list: line → 1 + offset of its entry in `arena` (0: not read yet). An entry is a
    /// 4-byte length, then the JSON bytes.
    private var index: [[UInt32]]
    private var arena: LineBuffer
    private var versions: [UInt64]
    private let lists: [String]
    private let source = RuleText()
    let arenaLimit: Int

    init(lists: [String], arenaLimit: Int = 64 << 20) {
        self.lists = lists
        self.arenaLimit = arenaLimit
        index = Array(repeating: [], count: lists.count)
        versions = Array(repeating: .max, count: lists.count)
        arena = LineBuffer(capacity: 1 << 16)
    }

    func deallocate() { arena.deallocate() }

    /// Forgets every text of a list that changed on disk (RuleText looks at most once a second);
    /// called once per batch, not per line.
    mutating func refresh() {
        var changed = false
        for i in lists.indices {
            let version = source.version(of: lists[i])
            if version != versions[i] {
                versions[i] = version
                changed = true
            }
        }
        if changed { clear() }
    }

    /// Appends line `line` of list `list` as a JSON string (or `null` when it cannot be read).
    @inline(__always)
    mutating func appendJSON(list: Int, line: UInt32, to out: inout LineBuffer) {
        let l = Int(line)
        if l < index[list].count, index[list][l] != 0 {
            let offset = Int(index[list][l] - 1)
            let length = Int(UnsafeRawPointer(arena.base + offset).loadUnaligned(as: UInt32.self))
            out.append(UnsafeRawBufferPointer(start: arena.base + offset + 4, count: length))
            return
        }
        let json = source.line(line, of: lists[list]).map { QueryLogFormatter.json($0) } ?? Array("null".utf8)
        out.append(json)
        guard l <= 1 << 26 else { return }  // a line number no list reaches: not worth an index
        if arena.count + json.count + 4 > arenaLimit { clear() }
        if l >= index[list].count {
            index[list].append(contentsOf: repeatElement(0, count: l + 1 - index[list].count))
        }
        index[list][l] = UInt32(arena.count + 1)
        withUnsafeBytes(of: UInt32(json.count).littleEndian) { arena.append($0) }
        arena.append(json)
    }

    private mutating func clear() {
        for i in index.indices { index[i].removeAll() }
        arena.removeAll()
    }
}
