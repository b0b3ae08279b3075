import Rules

/// Rule texts by list and line, as JSON strings for the query log (or as they are written, for
/// dnstap's `Policy.rule`): a blocked-heavy load logs a
/// different rule per query, so the lookup is an array index (one per list, grown to the highest
/// line seen) into one arena of texts rather than a hash of small arrays. Each list's lines are
/// read back through `RuleText` once and kept until the list changes on disk or the arena passes
/// `arenaLimit` (then it starts over). One writer thread only.
package struct RuleTextCache {
    /// Per list: line → 1 + offset of its entry in `arena` (0: not read yet). An entry is a
    /// 4-byte length, then the JSON bytes.
    private var index: [[UInt32]]
    private var arena: LineBuffer
    private var versions: [UInt64]
    private let lists: [String]
    private let source = RuleText()
    let arenaLimit: Int
    /// Texts as they are written rather than as JSON strings (and nothing for a line that cannot
    /// be read, rather than `null`).
    let raw: Bool

    package init(lists: [String], raw: Bool = false, arenaLimit: Int = 64 << 20) {
        self.lists = lists
        self.raw = raw
        self.arenaLimit = arenaLimit
        index = Array(repeating: [], count: lists.count)
        versions = Array(repeating: .max, count: lists.count)
        arena = LineBuffer(capacity: 1 << 16)
    }

    package func deallocate() { arena.deallocate() }

    /// Forgets every text of a list that changed on disk (RuleText looks at most once a second);
    /// called once per batch, not per line.
    package mutating func refresh() {
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

    /// Loads the index entry and the start of the cached text of a rule that is about to be
    /// formatted (Writer's look-ahead), so that its cache misses come early and overlap with
    /// others'. The result only keeps the loads from being optimized away.
    @inline(__always)
    package func touch(list: UInt16, line: UInt32) -> UInt8 {
        let l = Int(line), i = Int(list)
        guard i < index.count, l < index[i].count else { return 0 }
        let entry = Int(index[i][l])
        guard entry != 0 else { return 0 }
        // Its 4-byte length and the first text bytes, and where a 40-byte text ends.
        let last = min(entry - 1 + 44, arena.count - 1)
        return arena.base[entry - 1] &+ arena.base[last]
    }

    /// The two halves of `touch`, for a writer that starts a whole group's index loads before any
    /// text load (each half's cache misses then overlap with each other): the index entry of a
    /// rule (0: not cached) ...
    @inline(__always)
    package func entry(list: UInt16, line: UInt32) -> Int {
        let l = Int(line), i = Int(list)
        guard i < index.count, l < index[i].count else { return 0 }
        return Int(index[i][l])
    }

    /// ... and the first and last bytes of its text (the result only keeps the loads).
    @inline(__always)
    package func touch(entry: Int) -> UInt8 {
        guard entry != 0 else { return 0 }
        return arena.base[entry - 1] &+ arena.base[min(entry - 1 + 44, arena.count - 1)]
    }

    /// Appends line `line` of list `list` as a JSON string (or `null` when it cannot be read), or
    /// raw (or nothing).
    @inline(__always)
    package mutating func append(list: Int, line: UInt32, to out: inout LineBuffer) {
        let l = Int(line)
        if l < index[list].count, index[list][l] != 0 {
            let offset = Int(index[list][l] - 1)
            let length = Int(UnsafeRawPointer(arena.base + offset).loadUnaligned(as: UInt32.self))
            out.append(UnsafeRawBufferPointer(start: arena.base + offset + 4, count: length))
            return
        }
        readBack(list: list, line: l, to: &out)
    }

    /// A text not cached yet: read back, escaped straight into the arena, indexed, and copied to
    /// the line (a restart under a blocked-heavy load does this for every rule it meets once).
    @inline(never)
    private mutating func readBack(list: Int, line l: Int, to out: inout LineBuffer) {
        if !source.hasLine(UInt32(truncatingIfNeeded: l), of: lists[list]) && source.lookAgain(lists[list]) {
            // Replaced within the second: every text cached from the old file is stale.
            versions[list] = source.version(of: lists[list])
            clear()
        }
        guard l <= 1 << 26 else {  // a line number no list reaches: not worth an index
            Self.appendText(source, line: UInt32(l), of: lists[list], raw: raw, to: &out)
            return
        }
        let offset = arena.count
        withUnsafeBytes(of: UInt32(0)) { arena.append($0) }
        Self.appendText(source, line: UInt32(l), of: lists[list], raw: raw, to: &arena)
        let length = arena.count - offset - 4
        UnsafeMutableRawPointer(arena.base + offset).storeBytes(of: UInt32(length), as: UInt32.self)
        out.append(UnsafeRawBufferPointer(start: arena.base + offset + 4, count: length))
        if l >= index[list].count {
            index[list].append(contentsOf: repeatElement(0, count: l + 1 - index[list].count))
        }
        index[list][l] = UInt32(offset + 1)
        if arena.count > arenaLimit { clear() }
    }

    /// A list line as a JSON string, or `null`; raw: as it is, or nothing.
    private static func appendText(_ source: RuleText, line: UInt32, of path: String, raw: Bool, to out: inout LineBuffer) {
        let found: Void? = source.withLine(line, of: path) { bytes in
            if raw {
                out.append(bytes)
            } else if bytes.contains(where: { $0 >= 0x80 }) {
                // Not ASCII: read as UTF-8 with invalid sequences replaced (U+FFFD), so that the
                // line stays valid JSON whatever the file holds.
                var text = String(decoding: bytes, as: UTF8.self)
                text.withUTF8 { out.appendJSONString(utf8: UnsafeRawBufferPointer($0)) }
            } else {
                out.appendJSONString(utf8: bytes)
            }
        }
        if found == nil && !raw { out.append("null") }
    }

    private mutating func clear() {
        for i in index.indices { index[i].removeAll() }
        arena.removeAll()
    }
}
