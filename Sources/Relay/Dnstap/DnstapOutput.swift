import Configuration
import Dnstap
import Glibc
import LinuxNet
import RelayCore

/// Where dnstap frames go (`dnstap.socket`, `dnstap.tcp`, `dnstap.file`), for the dnstap writer
/// thread only: a Frame Streams receiver over a unix or TCP socket, spoken to bidirectionally
/// (READY → ACCEPT → START, frames, STOP → FINISH), or a file (START, frames, STOP).
///
/// A collector that is absent, refuses, or stops reading never blocks the writer for long: every
/// wait is bounded, a batch that cannot be written whole closes the connection (a frame cut in
/// the middle would corrupt the stream), and connecting again waits 1 s, then 2, 4 … up to 30 s.
final class DnstapOutput {
    typealias Target = Configuration.Dnstap.Target

    let target: Target
    private var socket: Socket?
    private var fd: Int32 = -1
    private var nextAttempt: UInt64 = 0
    private var backoff: UInt64 = 1_000_000_000
    /// How long a handshake step or a write may wait.
    static let waitMilliseconds: Int32 = 1000
    static let maxBackoff: UInt64 = 30_000_000_000
    /// Why the last attempt failed, for the writer's (rate-limited) log line.
    private(set) var lastError: String?

    /// SO_MARK on a TCP connection to the collector (`intercept.bypass_mark`), so that the
    /// interception never takes it, whatever port the collector listens on.
    private let bypassMark: UInt32?

    init(_ target: Target, bypassMark: UInt32? = nil) {
        self.target = target
        self.bypassMark = bypassMark
    }

    deinit { close(finish: false) }

    var isOpen: Bool { fd >= 0 }

    /// Opens the output when it is closed and its backoff has passed; true when it is open.
    func open(now: UInt64) -> Bool {
        if isOpen { return true }
        guard now >= nextAttempt else { return false }
        do {
            try connect()
            backoff = 1_000_000_000
            lastError = nil
            return true
        } catch {
            lastError = "\(target): \(error)"
            close(finish: false)
            nextAttempt = now + backoff
            backoff = min(backoff * 2, Self.maxBackoff)
            return false
        }
    }

    /// Writes `bytes` (whole data frames) completely; false (and the output closed) when it cannot.
    func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard isOpen else { return false }
        if case .file = target {
            var offset = 0
            while offset < bytes.count {
                do {
                    let n = try FileCalls.write(fd, UnsafeRawBufferPointer(rebasing: bytes[offset...]))
                    guard n > 0 else { throw Errno(rawValue: EIO) }
                    offset += n
                } catch {
                    lastError = "\(target): \(error)"
                    close(finish: false)
                    return false
                }
            }
            return true
        }
        guard let socket else { return false }
        var offset = 0
        while offset < bytes.count {
            switch socket.write(UnsafeRawBufferPointer(rebasing: bytes[offset...])) {
            case .bytes(let n):
                offset += n
            case .wouldBlock:
                guard socket.wait(writable: true, milliseconds: Self.waitMilliseconds) else {
                    lastError = "\(target): the collector stopped reading"
                    close(finish: false)
                    return false
                }
            case .closed, .failed:
                lastError = "\(target): the collector closed the connection"
                close(finish: false)
                return false
            }
        }
        return true
    }

    /// Ends the stream (STOP, and FINISH awaited from a collector) and closes.
    func close(finish: Bool = true) {
        guard fd >= 0 else { return }
        if finish {
            let wrote = FrameStreams.encode(.init(.stop)).withUnsafeBytes { write($0) }
            if wrote, socket != nil { _ = readControl() }  // FINISH, or give up after the wait
            guard fd >= 0 else { return }  // the write failed and closed it
        }
        if socket == nil { FileCalls.close(fd) }
        socket?.close()
        socket = nil
        fd = -1
    }

    // MARK: Opening

    private func connect() throws {
        let contentType = [FrameStreams.dnstapContentType]
        switch target {
        case .file(let path):
            fd = try FileCalls.open(path, flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode: 0o640)
            guard FrameStreams.encode(.init(.start, contentTypes: contentType)).withUnsafeBytes({ write($0) }) else {
                throw RelayError(.netlink, lastError ?? "cannot write")
            }
            return
        case .unix(let path):
            let s = try Socket.unixStream()
            socket = s
            fd = s.fd
            try s.startConnect(toUnixPath: path)
        case .tcp(let endpoint):
            let s = try Socket.tcp(for: endpoint)
            socket = s
            fd = s.fd
            if let bypassMark { try s.set(.mark(bypassMark)) }
            try s.startConnect(to: endpoint)
        }
        guard let socket, socket.wait(writable: true, milliseconds: Self.waitMilliseconds) else {
            throw RelayError(.netlink, "no connection within \(Self.waitMilliseconds) ms")
        }
        if let error = socket.pendingError() { throw error }
        // The bidirectional handshake.
        guard FrameStreams.encode(.init(.ready, contentTypes: contentType)).withUnsafeBytes({ write($0) }) else {
            throw RelayError(.netlink, lastError ?? "cannot write READY")
        }
        guard let accept = readControl() else { throw RelayError(.netlink, lastError ?? "no ACCEPT") }
        guard accept.type == .accept, accept.contentTypes.contains(FrameStreams.dnstapContentType) else {
            throw RelayError(.netlink, "the collector answered \(accept.type) \(accept.contentTypes), not ACCEPT \(FrameStreams.dnstapContentType)")
        }
        guard FrameStreams.encode(.init(.start, contentTypes: contentType)).withUnsafeBytes({ write($0) }) else {
            throw RelayError(.netlink, lastError ?? "cannot write START")
        }
    }

    /// One control frame from the collector, within the wait; nil (with `lastError`) otherwise.
    private func readControl() -> FrameStreams.Control? {
        guard let socket else { return nil }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: FrameStreams.maxControlLength + 8)
        while true {
            switch received.withUnsafeBytes({ FrameStreams.parseControl($0) }) {
            case .control(let control, _): return control
            case .invalid(let why): lastError = "\(target): \(why)"; return nil
            case .incomplete: break
            }
            guard socket.wait(writable: false, milliseconds: Self.waitMilliseconds) else {
                lastError = "\(target): no control frame within \(Self.waitMilliseconds) ms"
                return nil
            }
            let room = chunk.count - received.count
            guard room > 0 else { lastError = "\(target): control frame too long"; return nil }
            switch chunk.withUnsafeMutableBytes({ socket.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<room])) }) {
            case .bytes(let n): received += chunk[0..<n]
            case .wouldBlock: continue
            case .closed, .failed:
                lastError = "\(target): the collector closed the connection"
                return nil
            }
        }
    }
}
