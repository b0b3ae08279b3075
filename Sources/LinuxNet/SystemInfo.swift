#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import RelayCore

// Glibc imports RLIMIT_NOFILE as an enum case of __rlimit_resource.
private let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)

/// Facts about the running system that the relay sizes itself by.
public enum SystemInfo {
    /// CPUs this process may run on (respects taskset/cgroup affinity).
    public static var availableCPUs: Int { Int(tr_available_cpus()) }

    /// The wall clock in Unix seconds (for timestamps people read, never for intervals).
    public static func wallClockSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// A monotonic clock in nanoseconds.
    @inline(__always)
    public static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Names the calling thread (at most 15 bytes), so that `top -H`, perf and /proc tell the
    /// relay's threads apart. Best effort: a name is not worth failing for.
    public static func nameThisThread(_ name: String) {
        _ = tr_set_thread_name(name)
    }

    /// A capability the relay needs, with its bit in CapEff (linux/capability.h).
    public enum Capability: Int, CaseIterable, Sendable {
        case netBindService = 10
        case netAdmin = 12
        case netRaw = 13

        public var name: String {
            switch self {
            case .netBindService: return "CAP_NET_BIND_SERVICE"
            case .netAdmin: return "CAP_NET_ADMIN"
            case .netRaw: return "CAP_NET_RAW"
            }
        }
    }

    /// The effective capability set (CapEff of /proc/self/status); nil when it cannot be read.
    public static func effectiveCapabilities() -> UInt64? {
        guard let status = try? readFile("/proc/self/status") else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
            return UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: " \t"), radix: 16)
        }
        return nil
    }

    /// Which of `needed` the effective set lacks (root without capabilities lacks them all).
    public static func missingCapabilities(_ needed: [Capability]) -> [Capability] {
        guard let mask = effectiveCapabilities() else { return geteuid() == 0 ? [] : needed }
        return needed.filter { mask & (1 << UInt64($0.rawValue)) == 0 }
    }

    /// Whether the effective capability set holds CAP_NET_ADMIN (bit 12 of CapEff).
    public static func hasNetAdminCapability() -> Bool {
        missingCapabilities([.netAdmin]).isEmpty
    }

    /// Raises the soft limit on open descriptors to the hard limit (systemd starts services at
    /// 1,024 soft, 524,288 hard) and returns the soft limit now in force. Every QUIC flow, TCP
    /// connection and reply socket costs a descriptor; the relay sizes its caps by this figure.
    public static func raiseDescriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(RLIMIT_NOFILE_VALUE, &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur >= rlim_t(Int32.max) ? Int(Int32.max) : Int(limit.rlim_cur)
    }

    /// Index of a network interface, or nil when it does not exist in this namespace.
    /// Every address of this host's interfaces (IPv4 and IPv6, loopback included): what the host
    /// itself sends from, so how its own captured queries are told apart.
    public static func localAddresses() -> [IPAddress] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var out: [IPAddress] = []
        var cursor = list
        while let entry = cursor {
            if let address = entry.pointee.ifa_addr {
                switch Int32(address.pointee.sa_family) {
                case AF_INET:
                    address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                        out.append(.v4(IPv4Address(rawValue: $0.pointee.sin_addr.s_addr)))
                    }
                case AF_INET6:
                    address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { a in
                        out.append(.v6(withUnsafeBytes(of: a.pointee.sin6_addr) { IPv6Address(bytes: Array($0)) }))
                    }
                default:
                    break
                }
            }
            cursor = entry.pointee.ifa_next
        }
        return out
    }

    public static func interfaceIndex(_ name: String) -> UInt32? {
        let index = if_nametoindex(name)
        return index == 0 ? nil : index
    }

    /// A small text file (procfs, sysctl) read whole.
    public static func readFile(_ path: String) throws(Errno) -> String {
        let fd = try syscall { open(path, O_RDONLY | O_CLOEXEC) }
        defer { _ = close(fd) }
        var bytes = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = try syscall { read(fd, &chunk, chunk.count) }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var s = self
        while let c = s.first, set.contains(c) { s.removeFirst() }
        while let c = s.last, set.contains(c) { s.removeLast() }
        return String(s)
    }
}
