import Dnstap
import Glibc
import QueryLog
import RelayCore
import Rules

/// Turns the events drained from the workers' rings into Frame Streams data frames in `out`, for
/// the dnstap writer thread: times made wall-clock, the deciding rule's list and text looked up
/// (RuleTextCache, as the query log does) for the `Policy`, and each frame written in place with
/// no allocation.
struct DnstapEncoder {
    /// Frames ready to be written, and how many.
    var out = LineBuffer(capacity: 256 << 10)
    var frames = 0
    private let identity: [UInt8]
    private let version: [UInt8]
    /// The lists by index as `Policy.type` names them (`policyTypes`).
    private let listNames: [[UInt8]]
    private var ruleTexts: RuleTextCache
    private var ruleText = LineBuffer(capacity: 1024)
    /// CLOCK_REALTIME − CLOCK_MONOTONIC, read once per drain.
    private var wallOffset: UInt64 = 0

    static let bypassType = Array(BuiltinRule.listName.utf8)

    init(identity: [UInt8], version: [UInt8], lists: [String], files: [String]? = nil) {
        self.identity = identity
        self.version = version
        listNames = Self.policyTypes(lists).map { Array($0.utf8) }
        ruleTexts = RuleTextCache(lists: files ?? lists, raw: true)
    }

    /// Each list's file name, or its whole path where two lists share a file name: the policy's
    /// origin in every blocked frame, so kept short (a path such as /etc/tproxy-relay/lists/x.txt
    /// is a third of a blocked answer's frame); the query log has the paths.
    static func policyTypes(_ lists: [String]) -> [String] {
        let names = lists.map { $0.split(separator: "/").last.map(String.init) ?? $0 }
        return zip(lists, names).map { path, name in names.filter { $0 == name }.count > 1 ? path : name }
    }

    func deallocate() {
        entries.deallocate()
        out.deallocate()
        ruleText.deallocate()
        ruleTexts.deallocate()
    }

    /// Before each drain: the clocks' offset, and rule texts of lists edited since.
    mutating func startDrain() {
        var real = timespec(), mono = timespec()
        clock_gettime(CLOCK_REALTIME, &real)
        clock_gettime(CLOCK_MONOTONIC, &mono)
        wallOffset = (UInt64(real.tv_sec) &* 1_000_000_000 &+ UInt64(real.tv_nsec)) &- (UInt64(mono.tv_sec) &* 1_000_000_000 &+ UInt64(mono.tv_nsec))
        ruleTexts.refresh()
    }

    /// Starts the loads `append` will make for a group's rule texts (DnstapRing's look-ahead): all
    /// the index entries first, then all the texts, so that the misses of each pass overlap.
    @inline(__always)
    mutating func touch(_ group: UnsafeBufferPointer<DnstapEvent>) {
        for i in group.indices {
            entries[i] = group[i].policyAction == 0 ? 0 : ruleTexts.entry(list: group[i].ruleList, line: group[i].ruleLine)
        }
        for i in group.indices { touched &+= ruleTexts.touch(entry: entries[i]) }
    }

    /// The look-ahead's index entries, one per event of a group.
    private let entries = UnsafeMutablePointer<Int>.allocate(capacity: DnstapRing.group)

    /// Where the look-ahead's loads end up, so that the compiler keeps them.
    private(set) var touched: UInt8 = 0

    /// Appends one event as a data frame; false when it cannot be encoded (counted as dropped).
    mutating func append(_ event: DnstapEvent, message: UnsafeRawBufferPointer) -> Bool {
        ruleText.removeAll()
        let list = Int(event.ruleList)
        let type: [UInt8]
        if event.policyAction == 0 {
            type = []
        } else if event.ruleList == BuiltinRule.list {
            type = Self.bypassType
            if let builtin = BuiltinRule(rawValue: event.ruleLine) { ruleText.append(string: builtin.key) }
        } else if list < listNames.count {
            type = listNames[list]
            ruleTexts.append(list: list, line: event.ruleLine, to: &ruleText)
        } else {
            type = []  // decided without a rule the lists hold (an alias's answer): no type, no rule
        }
        let room = 4 + 96 + identity.count + version.count + message.count + type.count + ruleText.count
        let frame = out.reserve(room)
        let isQuery = event.kind == .clientQuery || event.kind == .forwarderQuery
        let length: Int? = type.withUnsafeBytes { typeBytes in
            let policy = DnstapMessage.Policy.Action(rawValue: event.policyAction).map {
                DnstapMessage.Policy(type: typeBytes, rule: ruleText.bytes, action: $0, matchedName: event.ruleList != .max)
            }
            let dnstap = DnstapMessage(kind: event.kind, transport: event.transport,
                                       queryAddress: event.hasQueryAddress ? event.queryAddress : nil, responseAddress: event.responseAddress,
                                       queryTime: event.queryTime &+ wallOffset,
                                       responseTime: event.responseTime == 0 ? nil : event.responseTime &+ wallOffset,
                                       queryMessage: isQuery ? message : nil, responseMessage: isQuery ? nil : message, policy: policy)
            return dnstap.encode(identity: identity, version: version, into: UnsafeMutableRawBufferPointer(start: frame + 4, count: room - 4))
        }
        guard let length else { return false }
        FrameStreams.writeDataHeader(length: length, to: UnsafeMutableRawPointer(frame))
        out.advance(by: 4 + length)
        frames += 1
        return true
    }
}
