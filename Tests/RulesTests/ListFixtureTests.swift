import Foundation
import Testing
@testable import Rules

/// The list formats people use, from fixtures in this repository (Tests/RulesTests/Fixtures,
/// written by make_lists.py in the shapes of the public lists): every rule is read (the count in
/// the header), nothing is rejected, and names match with each format's own semantics. The big
/// public lists are read too, by `RealListTests`, when they are beside the clone.
@Suite struct ListFixtureTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/lists").path

    /// How a format covers names: the listed name, and the names below it.
    struct Format: CustomTestStringConvertible, Sendable {
        var file: String
        var coversName: Bool
        var coversSubdomains: Bool
        var testDescription: String { file }
    }

    static let formats: [Format] = [
        Format(file: "fixture.adblock.txt", coversName: true, coversSubdomains: true),
        Format(file: "fixture.wildcard.txt", coversName: false, coversSubdomains: true),
        Format(file: "fixture.dnsmasq.txt", coversName: true, coversSubdomains: true),
        Format(file: "fixture.domains.txt", coversName: true, coversSubdomains: false),
        Format(file: "fixture.hosts.txt", coversName: true, coversSubdomains: false),
        Format(file: "fixture.unbound.conf", coversName: true, coversSubdomains: true),
        Format(file: "fixture.handmade.hosts.txt", coversName: true, coversSubdomains: false),
    ]

    static func statedCount(_ path: String) throws -> Int {
        // Lines split on any line end: "\r\n" is one Character, which splitting on "\n" would miss.
        let header = try String(contentsOfFile: path, encoding: .utf8).split(whereSeparator: \.isNewline).prefix(20)
        return try #require(header.compactMap { line -> Int? in
            guard let range = line.range(of: "Domains: ") else { return nil }
            return Int(line[range.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines))
        }.first, "no 'Domains: N' line in \(path)")
    }

    static func decide(_ set: RuleSet, _ name: String) -> RuleSet.Match.Verdict {
        var bytes = Array(name.lowercased().utf8)
        return bytes.withUnsafeMutableBytes { set.decide(name: UnsafeRawBufferPointer($0), type: 1) }.verdict
    }

    @Test(arguments: formats)
    func readsEveryRule(_ format: Format) throws {
        let path = Self.directory + "/" + format.file
        let set = try RuleSetBuilder.load(paths: [path])
        let report = try #require(set.reports.first)
        #expect(report.rejected.isEmpty, "\(report.rejected.prefix(3))")
        #expect(report.rules == (try Self.statedCount(path)))
        let probes = try String(contentsOfFile: Self.directory + "/probes.txt", encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(probes.count == 4)
        for name in probes {
            #expect((Self.decide(set, name) == .block) == format.coversName, "\(name) in \(format.file)")
            #expect((Self.decide(set, "deeper." + name) == .block) == format.coversSubdomains, "deeper.\(name) in \(format.file)")
            #expect(Self.decide(set, "not-" + name) == .pass, "not-\(name) in \(format.file)")
        }
    }

    /// Every format holds the same 300 names, so the rule sets agree on all of them.
    @Test func formatsAgree() throws {
        let names = try String(contentsOfFile: Self.directory + "/fixture.domains.txt", encoding: .utf8)
            .split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        #expect(names.count == 300)
        for format in Self.formats {
            let set = try RuleSetBuilder.load(paths: [Self.directory + "/" + format.file])
            let blocked = names.filter { Self.decide(set, (format.coversName ? "" : "sub.") + $0) == .block }
            #expect(blocked.count == names.count, "\(format.file): \(names.count - blocked.count) names not blocked")
        }
    }
}
