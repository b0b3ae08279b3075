import Dnstap
import Foundation
import Glibc
import LinuxNet
import RelayCore
import Testing
@testable import Relay

/// The dnstap output against Debian's real receiver, `fstrm_capture`: the bidirectional handshake
/// over a unix socket and TCP, the file target, an absent collector and a collector that does not
/// speak Frame Streams. What was received is decoded by `dnstap-ldns`.
@Suite(.serialized) struct DnstapOutputTests {
    static let query: [UInt8] = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x77, 0x77, 0x77, 3, 0x6c, 0x61, 0x62, 4, 0x74, 0x65, 0x73, 0x74, 0, 0, 1, 0, 1]

    /// Two data frames: client responses from 10.53.1.2 and fd53:1::2.
    static func frames() -> [UInt8] {
        var out: [UInt8] = []
        for (client, asked) in [("10.53.1.2:40000", "10.53.3.53"), ("[fd53:1::2]:40001", "[fd53:3::53]:53")] {
            var buffer = [UInt8](repeating: 0, count: 1024)
            let length = query.withUnsafeBytes { q in
                buffer.withUnsafeMutableBytes { b in
                    DnstapMessage(kind: .clientResponse, transport: .udp, queryAddress: Endpoint(parsing: client, defaultPort: 0)!,
                                  responseAddress: Endpoint(parsing: asked, defaultPort: 53)!, queryTime: 1_764_600_000_000_000_000,
                                  responseTime: 1_764_600_000_001_000_000, responseMessage: q).encode(identity: Array("t".utf8), version: [], into: b)
                }
            }!
            out += FrameStreamsBytes.be32(UInt32(length)) + buffer[0..<length]
        }
        return out
    }

    static func run(_ tool: String, _ arguments: [String]) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        return (process, pipe)
    }

    static func decode(_ path: String) throws -> String {
        let (process, pipe) = try run("/usr/bin/dnstap-ldns", ["-r", path, "-y"])
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text
    }

    static func waitFor(_ condition: () -> Bool) -> Bool {
        for _ in 0..<100 where !condition() { usleep(20_000) }
        return condition()
    }

    static func expectDecoded(_ text: String) {
        for expected in ["query_address: \"10.53.1.2\"", "response_address: \"10.53.3.53\"", "query_address: \"fd53:1::2\"",
                         "response_address: \"fd53:3::53\"", "type: CLIENT_RESPONSE"] {
            #expect(text.contains(expected), "'\(expected)' not in:\n\(text)")
        }
    }

    /// fstrm_capture on `arguments`, our frames sent through `target`, then decoded.
    static func roundTrip(_ target: DnstapOutput.Target, capture arguments: [String], ready: () -> Bool) throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/fstrm_capture"), "fstrm_capture is missing: scripts/setup.sh installs it")
        let file = NSTemporaryDirectory() + "capture-\(UUID().uuidString).fstrm"
        defer { try? FileManager.default.removeItem(atPath: file) }
        // Through python, which unblocks SIGINT and SIGTERM first: a test in this process may
        // have blocked them (RelayService.blockSignals), and a child inherits the mask; fstrm_capture
        // writes its file out when SIGINT stops it.
        let (capture, _) = try run("/usr/bin/python3", ["-c", "import os, signal, sys; signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM}); os.execv(sys.argv[1], sys.argv[1:])",
                                                        "/usr/bin/fstrm_capture", "-t", FrameStreams.dnstapContentType, "-w", file] + arguments)
        defer { if capture.isRunning { kill(capture.processIdentifier, SIGKILL) } }
        let listening = waitFor(ready)
        #expect(listening, "fstrm_capture did not start listening")
        let output = DnstapOutput(target)
        #expect(output.open(now: SystemInfo.monotonicNanoseconds()), "\(output.lastError ?? "")")
        #expect(Self.frames().withUnsafeBytes { output.write($0) })
        output.close()  // STOP, FINISH
        #expect(!output.isOpen)
        capture.interrupt()
        let stopped = Self.waitFor { !capture.isRunning }
        #expect(stopped, "fstrm_capture did not stop on SIGINT")
        guard stopped else { return }
        Self.expectDecoded(try Self.decode(file))
    }

    @Test func overAUnixSocket() throws {
        let socket = NSTemporaryDirectory() + "dnstap-\(UUID().uuidString.prefix(8)).sock"
        defer { try? FileManager.default.removeItem(atPath: socket) }
        try Self.roundTrip(.unix(socket), capture: ["-u", socket]) { FileManager.default.fileExists(atPath: socket) }
    }

    @Test func overTCP() throws {
        let port = UInt16(20_000 + Int(getpid() % 20_000))
        let endpoint = Endpoint(address: IPAddress("127.0.0.1")!, port: port)
        try Self.roundTrip(.tcp(endpoint), capture: ["-a", "127.0.0.1", "-p", "\(port)"]) {
            let probe = try? Socket.tcp(for: endpoint)
            try? probe?.startConnect(to: endpoint)
            return probe?.wait(writable: true, milliseconds: 50) == true && probe?.pendingError() == nil
        }
    }

    @Test func toAFile() throws {
        let file = NSTemporaryDirectory() + "dnstap-\(UUID().uuidString).fstrm"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let output = DnstapOutput(.file(file))
        #expect(output.open(now: 0))
        #expect(Self.frames().withUnsafeBytes { output.write($0) })
        output.close()
        Self.expectDecoded(try Self.decode(file))
    }

    @Test func anAbsentCollectorBacksOff() {
        let output = DnstapOutput(.unix(NSTemporaryDirectory() + "nobody-\(UUID().uuidString.prefix(8)).sock"))
        let now = SystemInfo.monotonicNanoseconds()
        #expect(!output.open(now: now))
        #expect(output.lastError?.contains("unix:") == true)
        // Within the backoff nothing is tried; after it, again (and the wait doubles).
        #expect(!output.open(now: now + 500_000_000))
        #expect(!output.open(now: now + 1_000_000_001))
        #expect(!output.isOpen)
    }

    /// A collector that accepts the stream and then stops reading: a write waits at most its
    /// bound, then the connection is given up (the writer drops and counts; DNS never waits).
    @Test func aCollectorThatStopsReadingIsLeftWithinTheWait() throws {
        let path = NSTemporaryDirectory() + "stuck-\(UUID().uuidString.prefix(8)).sock"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let accept = FrameStreams.encode(.init(.accept, contentTypes: [FrameStreams.dnstapContentType]))
        let (server, _) = try Self.run("/usr/bin/python3", ["-c", """
            import socket, sys, time
            s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
            c, _ = s.accept(); c.recv(100); c.sendall(bytes.fromhex(sys.argv[2])); c.recv(100); time.sleep(10)
            """, path, accept.map { String(format: "%02x", $0) }.joined()])
        defer { kill(server.processIdentifier, SIGKILL) }
        #expect(Self.waitFor { FileManager.default.fileExists(atPath: path) })
        let output = DnstapOutput(.unix(path))
        #expect(output.open(now: SystemInfo.monotonicNanoseconds()), "\(output.lastError ?? "")")
        let big = [UInt8](repeating: 0, count: 32 << 20)
        let started = SystemInfo.monotonicNanoseconds()
        #expect(!big.withUnsafeBytes { output.write($0) })
        let waited = SystemInfo.monotonicNanoseconds() - started
        #expect(waited < 3_000_000_000, "waited \(waited / 1_000_000) ms")
        #expect(output.lastError?.contains("stopped reading") == true, "\(output.lastError ?? "")")
        #expect(!output.isOpen)
    }

    @Test func aCollectorThatDoesNotSpeakFrameStreamsIsLeft() throws {
        // A plain listener that sends garbage instead of ACCEPT.
        let path = NSTemporaryDirectory() + "junk-\(UUID().uuidString.prefix(8)).sock"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (server, _) = try Self.run("/usr/bin/python3", ["-c", """
            import socket, sys, time
            s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
            c, _ = s.accept(); c.recv(100); c.sendall(b"\\x00\\x00\\x00\\x05hello"); time.sleep(2)
            """, path])
        defer { kill(server.processIdentifier, SIGKILL) }
        #expect(Self.waitFor { FileManager.default.fileExists(atPath: path) })
        let output = DnstapOutput(.unix(path))
        #expect(!output.open(now: SystemInfo.monotonicNanoseconds()))
        #expect(output.lastError?.contains("a data frame where a control frame was expected") == true, "\(output.lastError ?? "")")
    }
}

/// Big-endian lengths for building frames in tests.
enum FrameStreamsBytes {
    static func be32(_ value: UInt32) -> [UInt8] { [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)] }
}
