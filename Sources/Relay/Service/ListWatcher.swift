import Glibc
import LinuxNet
import Logging
import Synchronization

/// Watches the rule lists and the zones directory with inotify and calls `onChange` with what
/// changed once a burst of changes has settled.
///
/// It watches the lists' directories, not the files: editors and `mv` replace a file with a new
/// one (a new inode), which a watch on the old file would never see. A change is acted on when
/// nothing else has changed for `settle` (a copy in progress is not read half-written).
final class ListWatcher: @unchecked Sendable {
    enum Kind: Hashable, Sendable { case lists, zones }

    private let paths: [String]
    private let zonesDirectory: String?
    private let settleNanoseconds: UInt64
    private let onChange: @Sendable (Set<Kind>) -> Void
    private let logger: Logger
    private let stopping = Atomic<Bool>(false)
    private var thread: SystemThread?
    private var inotify: Inotify?
    /// Watch descriptor → the list file names in that directory.
    private var names: [Int32: Set<String>] = [:]
    /// The watch on the zones directory (any file in it counts: zones and their $INCLUDEs).
    private var zonesWatch: Int32 = -1

    init(paths: [String], zonesDirectory: String? = nil, settleMilliseconds: Int = 300, logger: Logger,
         onChange: @escaping @Sendable (Set<Kind>) -> Void) {
        self.paths = paths
        self.zonesDirectory = zonesDirectory
        self.settleNanoseconds = UInt64(settleMilliseconds) * 1_000_000
        self.logger = logger
        self.onChange = onChange
    }

    deinit { stop() }

    /// Sets the watches and starts the thread. A directory that cannot be watched is logged and
    /// skipped (SIGHUP still reloads).
    func start() {
        let inotify: Inotify
        do { inotify = try Inotify() } catch {
            logger.warning("cannot watch the lists (inotify: \(error)); reload with SIGHUP")
            return
        }
        self.inotify = inotify
        var byDirectory: [String: Set<String>] = [:]
        for path in paths {
            let slash = path.lastIndex(of: "/")
            let directory = slash.map { String(path[..<$0]) }.map { $0.isEmpty ? "/" : $0 } ?? "."
            let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
            byDirectory[directory, default: []].insert(name)
        }
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE)
        for (directory, files) in byDirectory {
            do { names[try inotify.addWatch(directory, mask: mask)] = files } catch {
                logger.warning("cannot watch \(directory) for list changes: \(error)")
            }
        }
        if let zonesDirectory {
            do { zonesWatch = try inotify.addWatch(zonesDirectory, mask: mask) } catch {
                logger.warning("cannot watch \(zonesDirectory) for zone changes: \(error)")
            }
        }
        do {
            thread = try SystemThread.start(name: "list-watcher") { self.loop() }
        } catch {
            logger.warning("cannot start the list watcher (pthread_create: \(error)); lists are reloaded on SIGHUP only")
        }
    }

    /// Stops the thread and closes the inotify descriptor.
    func stop() {
        stopping.store(true, ordering: .releasing)
        thread?.join()
        thread = nil
        inotify?.close()
        inotify = nil
    }

    private func loop() {
        var pending: UInt64?  // when the last relevant change was seen
        var changed: Set<Kind> = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 8)
        defer { buffer.deallocate() }
        while !stopping.load(ordering: .acquiring) {
            guard let inotify else { return }
            _ = try? inotify.wait(timeoutMilliseconds: 100)
            while true {
                guard let n = (try? inotify.read(into: buffer)) ?? nil, n > 0 else { break }
                let kinds = relevant(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                if !kinds.isEmpty {
                    changed.formUnion(kinds)
                    pending = monotonicNow()
                }
            }
            if let seen = pending, monotonicNow() - seen >= settleNanoseconds {
                pending = nil
                let kinds = changed
                changed = []
                onChange(kinds)
            }
        }
    }

    /// What the events in the batch touch: a list, a file in the zones directory, or both.
    private func relevant(_ events: UnsafeRawBufferPointer) -> Set<Kind> {
        var offset = 0
        var hit: Set<Kind> = []
        let header = MemoryLayout<inotify_event>.size
        while offset + header <= events.count {
            let event = events.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
            let nameLength = Int(event.len)
            if nameLength > 0, offset + header + nameLength <= events.count {
                let raw = UnsafeRawBufferPointer(rebasing: events[(offset + header)..<(offset + header + nameLength)])
                let name = String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                if names[event.wd]?.contains(name) == true { hit.insert(.lists) }
                if event.wd == zonesWatch && !name.hasPrefix(".") { hit.insert(.zones) }
            }
            if event.mask & UInt32(IN_Q_OVERFLOW) != 0 { hit = [.lists, .zones] }
            offset += header + nameLength
        }
        return hit
    }

    private func monotonicNow() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
