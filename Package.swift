// swift-tools-version:6.0
import PackageDescription

// One C library, one Swift owner: CLinuxShim is used only by LinuxNet, CLDNS only by DNS,
// CNetfilter only by Interception. Their types never leak upward (docs/DESIGN.md, layout).
let package = Package(
    name: "tproxy-relay",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "tproxy-relay", targets: ["tproxy-relay"]),
        .executable(name: "rules-bench", targets: ["RulesBenchmark"]),
        .executable(name: "querylog-bench", targets: ["QueryLogBenchmark"]),
        // Release-built check that the pipeline's hot paths allocate nothing (scripts/test.sh).
        .executable(name: "alloc-check", targets: ["AllocationCheck"]),
        // scripts/fuzz.sh builds this with -sanitize=fuzzer,address (issue 13).
        .executable(name: "tproxy-relay-fuzz", targets: ["Fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        // C shims and system libraries
        .target(name: "CLinuxShim"),
        // alloc-check only: counts the calling thread's heap allocations (it stands in for malloc).
        .target(name: "CAllocationCounter"),
        .systemLibrary(
            name: "CLDNS", pkgConfig: "ldns",
            providers: [.apt(["libldns-dev"])]),
        .systemLibrary(
            name: "CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(
            name: "CNetfilter", pkgConfig: "libnftnl",
            providers: [.apt(["libnftnl-dev", "libmnl-dev"])]),

        // Swift modules, bottom up
        .target(name: "RelayCore"),
        .target(name: "LinuxNet", dependencies: ["RelayCore", "CLinuxShim"]),
        .target(name: "DNS", dependencies: ["RelayCore", "CLDNS"]),
        .target(name: "Interception", dependencies: ["RelayCore", "CNetfilter"]),
        .target(name: "Rules", dependencies: ["RelayCore"]),
        // dnstap (issue 20): the protobuf encoding of events and Frame Streams framing. No I/O.
        .target(name: "Dnstap", dependencies: ["RelayCore"]),
        // A small bounded HTTP/1.1 responder on its own thread (the metrics endpoint).
        .target(name: "HTTP", dependencies: ["RelayCore", "LinuxNet"]),
        .target(name: "Zones", dependencies: ["DNS"]),
        .target(name: "ClientNames", dependencies: ["RelayCore"]),
        .target(
            name: "ListDownload",
            dependencies: ["RelayCore", "LinuxNet", "CCurl", "Rules", .product(name: "Crypto", package: "swift-crypto")]),
        // QUIC Initial packets: keys, header protection, decryption, CRYPTO reassembly, SNI. No I/O.
        .target(
            name: "QUIC",
            dependencies: [
                "RelayCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]),
        // The relay's YAML configuration: keys, defaults, validation, errors with file:line:key.
        .target(
            name: "Configuration",
            dependencies: ["RelayCore", "Rules", "ClientNames", .product(name: "Yams", package: "Yams")]),
        // The query log: records, the ring workers fill, the writer thread, files and rotation,
        // formatting, following and statistics. `tail`, `stats` and querylog-bench need only this.
        .target(
            name: "QueryLog",
            dependencies: ["RelayCore", "LinuxNet", "DNS", "QUIC", "Rules", "ClientNames", .product(name: "Logging", package: "swift-log")]),
        // The web dashboard (docs/WEB.md): pages and JSON API over HTTP, sessions, the password
        // hash, the live feed and the overview; what it shows comes from a DashboardBackend (the
        // relay's service). The pages, script and style are embedded in the binary.
        .target(
            name: "Web",
            dependencies: [
                "RelayCore", "LinuxNet", "HTTP", "QueryLog", "ClientNames",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            resources: [
                .embedInCode("Assets/index.html"), .embedInCode("Assets/login.html"), .embedInCode("Assets/app.js"),
                .embedInCode("Assets/login.js"), .embedInCode("Assets/style.css"), .embedInCode("Assets/icon.svg"),
            ]),
        // What happens to one query: loop guard, local zones, rules, cache, upstream choice, as
        // one ordered chain of stages with no sockets (used by the datapath and by `explain`).
        .target(name: "Pipeline", dependencies: ["RelayCore", "DNS", "Rules", "Zones", "Configuration", "CLinuxShim"]),
        // The datapath (workers, TCP, QUIC flows) and the service around it.
        .target(
            name: "Relay",
            dependencies: [
                "RelayCore", "LinuxNet", "DNS", "Interception", "Rules", "Zones", "QUIC",
                "Configuration", "QueryLog", "Pipeline", "HTTP", "Dnstap", "Web", "ListDownload", "ClientNames",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(name: "Lab", dependencies: ["RelayCore"]),
        .executableTarget(
            name: "tproxy-relay",
            dependencies: [
                "Relay", "Lab", "Rules", "Zones", "Configuration", "QueryLog", "Pipeline", "DNS", "RelayCore", "Web", "ListDownload", "LinuxNet",
                "ClientNames",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // bench/rules.sh: load time, memory and lookup latency of compiled rule sets.
        .executableTarget(name: "RulesBenchmark", dependencies: ["Rules", "RelayCore"]),
        // bench/querylog.sh: the query log writer's CPU per line, formatting and writing apart.
        .executableTarget(
            name: "QueryLogBenchmark",
            dependencies: ["QueryLog", "ClientNames", "RelayCore", "LinuxNet", .product(name: "Logging", package: "swift-log")]),

        // Fuzzing: every parser of untrusted bytes as a target (FuzzTargets), libFuzzer's entry
        // (Fuzz), and the saved corpora replayed by FuzzCorpusTests in the unit suite.
        .target(name: "FuzzTargets", dependencies: ["DNS", "Rules", "QUIC", "Relay", "RelayCore", "Configuration", "QueryLog", "HTTP", "Dnstap", "ClientNames"]),
        .executableTarget(name: "Fuzz", dependencies: ["FuzzTargets"]),
        .executableTarget(name: "AllocationCheck",
                          dependencies: ["CAllocationCounter", "Pipeline", "Configuration", "DNS", "Rules", "Zones", "RelayCore"]),

        // Tests
        .testTarget(name: "RelayCoreTests", dependencies: ["RelayCore"]),
        .testTarget(name: "LinuxNetTests", dependencies: ["LinuxNet", "RelayCore"]),
        .testTarget(name: "DnstapTests", dependencies: ["Dnstap", "RelayCore"]),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP", "LinuxNet", "RelayCore"]),
        .testTarget(name: "ClientNamesTests", dependencies: ["ClientNames", "RelayCore"]),
        .testTarget(name: "ListDownloadTests", dependencies: ["ListDownload", "HTTP", "LinuxNet", "RelayCore"]),
        .testTarget(name: "WebTests", dependencies: ["Web", "HTTP", "LinuxNet", "RelayCore"]),
        .testTarget(name: "DNSTests", dependencies: ["DNS", "RelayCore"]),
        .testTarget(name: "InterceptionTests", dependencies: ["Interception", "RelayCore"]),
        // Fixtures/: list files read from the source tree (#filePath), not bundled.
        .testTarget(name: "RulesTests", dependencies: ["Rules", "RelayCore"], exclude: ["Fixtures"]),
        .testTarget(name: "ZonesTests", dependencies: ["Zones", "DNS"]),
        .testTarget(
            name: "QUICTests",
            dependencies: [
                "QUIC",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]),
        .testTarget(name: "ConfigurationTests", dependencies: ["Configuration", "RelayCore", "Rules"]),
        .testTarget(name: "QueryLogTests", dependencies: ["QueryLog", "RelayCore", "LinuxNet", "DNS", "Rules", "QUIC"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "Configuration", "RelayCore", "DNS", "Rules", "Zones"]),
        .testTarget(name: "RelayTests", dependencies: ["Relay", "RelayCore", "LinuxNet", "DNS", "Rules", "Pipeline", "Configuration", "QueryLog", "Dnstap", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "CLITests", dependencies: ["tproxy-relay"]),
        .testTarget(name: "FuzzCorpusTests", dependencies: ["FuzzTargets"]),
    ],
    swiftLanguageModes: [.v5]
)

// Release builds of the modules on the query path leave out the runtime exclusivity checks
// (every access to a class's stored property checked at run time: 2.5 % of the relay's samples
// on the miss path, measured with perf). The compile-time checks stay, and debug builds (the unit
// and e2e suites) keep the runtime ones; docs/DESIGN.md, "Exclusivity checks".
let queryPathModules: Set<String> = ["RelayCore", "LinuxNet", "DNS", "Rules", "Zones", "Pipeline", "QueryLog", "Dnstap", "Relay"]
for target in package.targets where queryPathModules.contains(target.name) {
    target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
}
