import Configuration
import Dnstap
import Glibc
import LinuxNet
import Logging
import QueryLog
import RelayCore
import Rules
import Synchronization

/// The dnstap writer thread: drains every worker's `DnstapRing` every 2 ms (20 ms when idle),
/// encodes each event as a `Dnstap` protobuf (DnstapMessage) in a Frame Streams data frame, and
/// writes them in pieces of about 64 KiB to the output (DnstapOutput: a collector or a file).
///
/// DNS never waits for it: a full ring drops events at the worker; while the collector is absent
/// or has stopped reading, drained events are dropped here. Both are counted (/metrics, the
/// summary at stop) and said in the relay's log at most once a minute.
final class DnstapWriter: @unchecked Sendable {
    let settings: Configuration.Dnstap
    private let identity: [UInt8]
    private let version: [UInt8]
    private let lists: [String]
    private let listFiles: [String]
    private let logger: Logger
    private let output: DnstapOutput
    private var rings: [DnstapRing] = []
    private let stopping = Atomic<Bool>(false)
    private var thread: SystemThread?

    /// Written by the writer thread, read by any (/metrics, the summary).
    private let sentShared = Atomic<Int>(0)
    private let droppedShared = Atomic<Int>(0)
    private let connectedShared = Atomic<Bool>(false)
    private var sent = 0
    private var droppedHere = 0
    private var lastWarning: UInt64 = 0
    private var touchedSink: UInt8 = 0

    /// Frames are written when this many bytes are ready (and after every drain).
    static let writeSize = 64 << 10
    static let busyInterval: UInt32 = 2_000
    static let idleInterval: UInt32 = 20_000

    init(settings: Configuration.Dnstap, bypassMark: UInt32? = nil, lists: [String], listFiles: [String]? = nil, logger: Logger) {
        self.listFiles = listFiles ?? lists
        self.settings = settings
        self.lists = lists
        self.logger = logger
        identity = Array((settings.identity ?? Self.hostName()).utf8)
        version = Array((settings.version ?? "tproxy-relay \(BuildInfo.version)").utf8)
        output = DnstapOutput(settings.target!, bypassMark: bypassMark)
    }

    /// A ring for one worker (call before `start`): room for `queue` events of 512 bytes.
    func makeRing() -> DnstapRing {
        let kinds = Set(settings.messages.map(\.kind))
        let ring = DnstapRing(capacity: settings.queue * 512, kinds: kinds)
        rings.append(ring)
        return ring
    }

    /// Opens a file target now (a path that cannot be written stops start-up, as the query log's
    /// does); a collector is connected by the thread, which keeps trying while it is absent.
    func start() throws {
        if case .file = output.target, !output.open(now: SystemInfo.monotonicNanoseconds()) {
            throw RelayError(.invalidConfiguration, "dnstap.file: cannot be written (\(output.lastError ?? "?"))")
        }
        do {
            thread = try SystemThread.start(name: "dnstap") { self.loop() }
        } catch {
            throw RelayError(.invalidConfiguration, "cannot start the dnstap writer (pthread_create: \(error))")
        }
    }

    /// Drains what is left, writes it, ends the stream (STOP, FINISH) and stops.
    func stop() {
        stopping.store(true, ordering: .releasing)
        thread?.join()
        thread = nil
    }

    /// Frames sent, dropped (at the rings and here), and whether the output is open now.
    var totals: (sent: Int, dropped: Int, connected: Bool) {
        (sentShared.load(ordering: .relaxed),
         rings.reduce(0) { $0 + $1.dropped.load(ordering: .relaxed) } + droppedShared.load(ordering: .relaxed),
         connectedShared.load(ordering: .relaxed))
    }

    var summary: String {
        let t = totals
        return "dnstap to \(output.target): \(t.sent) frames sent, \(t.dropped) dropped"
    }

    // MARK: The thread

    private func loop() {
        var encoder = DnstapEncoder(identity: identity, version: version, lists: lists, files: listFiles)
        defer {
            touchedSink = encoder.touched
            encoder.deallocate()
        }
        let rings = self.rings
        while true {
            let last = stopping.load(ordering: .acquiring)
            let now = SystemInfo.monotonicNanoseconds()
            connect(now: now)
            encoder.startDrain()
            var found = false
            for ring in rings where ring.waiting > 0 {
                found = true
                ring.drain(lookahead: { encoder.touch($0) }) { event, message in
                    guard output.isOpen else { droppedHere += 1; return }
                    if !encoder.append(event, message: message) { droppedHere += 1 }
                    if encoder.out.count >= Self.writeSize { flush(&encoder) }
                }
            }
            flush(&encoder)
            droppedShared.store(droppedHere, ordering: .relaxed)
            if last { break }
            usleep(found ? Self.busyInterval : Self.idleInterval)
        }
        output.close(finish: true)
        connectedShared.store(false, ordering: .relaxed)
    }

    /// Opens the output when it is closed and its backoff has passed, and says so.
    private func connect(now: UInt64) {
        guard !output.isOpen else { return }
        if output.open(now: now) {
            logger.info("dnstap: streaming to \(output.target)")
            connectedShared.store(true, ordering: .relaxed)
        } else if let why = output.lastError, now - lastWarning >= 60_000_000_000 || lastWarning == 0 {
            logger.warning("dnstap: \(why); frames are dropped and counted until it answers (tried again with backoff, up to every 30 s); DNS is not affected")
            lastWarning = now
        }
    }

    private func flush(_ encoder: inout DnstapEncoder) {
        guard !encoder.out.isEmpty else { return }
        if output.write(encoder.out.bytes) {
            sent += encoder.frames
            sentShared.store(sent, ordering: .relaxed)
        } else {
            droppedHere += encoder.frames
            connectedShared.store(false, ordering: .relaxed)
            logger.warning("dnstap: \(output.lastError ?? "the write failed"); \(encoder.frames) frames dropped, connecting again")
        }
        encoder.out.removeAll()
        encoder.frames = 0
    }

    private static func hostName() -> String {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count - 1) == 0 else { return "tproxy-relay" }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension Configuration.Dnstap.Message {
    var kind: DnstapMessage.Kind {
        switch self {
        case .clientQuery: return .clientQuery
        case .clientResponse: return .clientResponse
        case .forwarderQuery: return .forwarderQuery
        case .forwarderResponse: return .forwarderResponse
        }
    }
}
