import Glibc
import LinuxNet
import RelayCore
import Synchronization
import Testing

/// The relay's threads run their body once and carry their name, as /proc shows it (the kernel
/// keeps 15 bytes of it).
@Suite struct SystemThreadTests {
    final class Seen: Sendable {
        let name = Mutex("")
        let runs = Atomic<Int>(0)
    }

    static func run(named name: String) throws -> (name: String, runs: Int) {
        let seen = Seen()
        let thread = try SystemThread.start(name: name) {
            seen.runs.add(1, ordering: .relaxed)
            let comm = (try? SystemInfo.readFile("/proc/thread-self/comm")) ?? ""
            seen.name.withLock { $0 = String(comm.dropLast()) }  // without the newline
        }
        thread.join()
        return (seen.name.withLock { $0 }, seen.runs.load(ordering: .relaxed))
    }

    @Test func theBodyRunsOnceUnderItsName() throws {
        let result = try Self.run(named: "worker-1")
        #expect(result.name == "worker-1")
        #expect(result.runs == 1)
    }

    @Test func aLongNameIsCutToFifteenBytes() throws {
        #expect(try Self.run(named: "a-name-longer-than-fifteen-bytes").name == "a-name-longer-t")
    }
}
