import Testing
@testable import QUIC

/// The shapes real clients send (split, shuffled, coalesced, packet number 1 first) and the
/// malformed ones a sniffer meets on the Internet: the first must give the SNI, the second a
/// reason and never a crash.
@Suite struct InitialSnifferTests {
    static let dcid: [UInt8] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa]

    static func feed(_ datagrams: [[UInt8]], maxDatagrams: Int = 4) -> [InitialSniffer.Progress] {
        var sniffer = InitialSniffer(maxDatagrams: maxDatagrams)
        return datagrams.map { d in d.withUnsafeBytes { sniffer.feed($0) } }
    }

    static func failure(_ progress: InitialSniffer.Progress?) -> SNIFailure.Code? {
        if case .failed(let f) = progress { return f.code }
        return nil
    }

    /// A ClientHello larger than one datagram (a post-quantum key share makes Chrome's ~1,800
    /// bytes), split over two Initial packets in two datagrams, packet numbers 1 then 2.
    @Test func aClientHelloSplitOverTwoDatagrams() {
        let hello = InitialBuilder.clientHello(serverName: "www.example.org", padding: 1700)
        let cut = 1000
        let first = InitialBuilder.initial(destinationID: Self.dcid, packetNumber: 1,
                                           frames: InitialBuilder.crypto(offset: 0, hello[..<cut]), padTo: 1150)
        let second = InitialBuilder.initial(destinationID: Self.dcid, packetNumber: 2,
                                            frames: InitialBuilder.crypto(offset: cut, hello[cut...]), padTo: 1150)
        let progress = Self.feed([first, second])
        #expect(progress[0] == .needMore)
        #expect(progress[1] == .found(ClientHello(serverName: "www.example.org", alpn: ["h3"])))
    }

    /// Chrome shuffles CRYPTO frames and sprinkles PADDING and PING between them; the second
    /// datagram arrives first.
    @Test func shuffledCryptoFramesWithPaddingAndPingAndTheLaterDatagramFirst() {
        let hello = InitialBuilder.clientHello(serverName: "shuffled.example", padding: 1600)
        let pieces = [(0, 300), (300, 700), (700, 1100), (1100, hello.count)]
        let f = pieces.map { InitialBuilder.crypto(offset: $0.0, hello[$0.0..<$0.1]) }
        let ping: [UInt8] = [0x01], padding = [UInt8](repeating: 0, count: 7)
        let a = InitialBuilder.initial(destinationID: Self.dcid, packetNumber: 1, packetNumberLength: 1,
                                       frames: f[2] + padding + ping + f[0], padTo: 1100)
        let b = InitialBuilder.initial(destinationID: Self.dcid, packetNumber: 2, packetNumberLength: 2,
                                       frames: ping + f[3] + padding + f[1], padTo: 1100)
        let progress = Self.feed([b, a])
        #expect(progress[0] == .needMore)
        #expect(progress[1] == .found(ClientHello(serverName: "shuffled.example", alpn: ["h3"])))
    }

    /// Two Initial packets coalesced in one datagram, followed by a 0-RTT packet and a
    /// short-header packet, both of which are skipped.
    @Test func coalescedPacketsInOneDatagram() {
        let hello = InitialBuilder.clientHello(serverName: "coalesced.example", alpn: ["h3", "h3-29"])
        let half = hello.count / 2
        let one = InitialBuilder.initial(destinationID: Self.dcid, packetNumber: 1, frames: InitialBuilder.crypto(offset: half, hello[half...]))
        let two = InitialBuilder.initial(destinationID: Self.dcid, packetNumber: 2, frames: InitialBuilder.crypto(offset: 0, hello[..<half]))
        // A 0-RTT packet (type 1 in v1): header, length 40, then 40 opaque bytes.
        var zeroRTT: [UInt8] = [0xd3, 0, 0, 0, 1, UInt8(Self.dcid.count)] + Self.dcid + [0, 0x40, 40]
        zeroRTT += [UInt8](repeating: 0xab, count: 40)
        let short: [UInt8] = [0x43] + [UInt8](repeating: 0xcd, count: 60)
        let progress = Self.feed([one + two + zeroRTT + short])
        #expect(progress[0] == .found(ClientHello(serverName: "coalesced.example", alpn: ["h3", "h3-29"])))
    }

    @Test func retransmittedCryptoDataThatAgreesIsAccepted() {
        let hello = InitialBuilder.clientHello(serverName: "retx.example", padding: 100)
        let a = InitialBuilder.initial(destinationID: Self.dcid, packetNumber: 1, frames: InitialBuilder.crypto(offset: 0, hello[..<100]))
        let b = InitialBuilder.initial(destinationID: Self.dcid, packetNumber: 2,
                                       frames: InitialBuilder.crypto(offset: 50, hello[50..<120]) + InitialBuilder.crypto(offset: 100, hello[100...]))
        #expect(Self.feed([a, b]) == [.needMore, .found(ClientHello(serverName: "retx.example", alpn: ["h3"]))])
    }

    @Test func namesAreLowerCasedAndLoseTheirTrailingDot() {
        let hello = InitialBuilder.clientHello(serverName: "WWW.Example.COM.")
        let p = InitialBuilder.initial(destinationID: Self.dcid, packetNumber: 0, frames: InitialBuilder.crypto(offset: 0, hello[...]), padTo: 1100)
        #expect(Self.feed([p]) == [.found(ClientHello(serverName: "www.example.com", alpn: ["h3"]))])
    }

    @Test func theResultStaysOnceDecided() {
        let hello = InitialBuilder.clientHello(serverName: "once.example")
        let p = InitialBuilder.initial(destinationID: Self.dcid, packetNumber: 0, frames: InitialBuilder.crypto(offset: 0, hello[...]))
        let progress = Self.feed([p, [0x00, 0x01], p])
        #expect(progress.allSatisfy { $0 == .found(ClientHello(serverName: "once.example", alpn: ["h3"])) })
    }

    // MARK: Malformed and foreign input: a reason, never a crash

    /// (what, datagrams, the reason expected for the last one)
    static let malformed: [(String, [[UInt8]], SNIFailure.Code)] = {
        let hello = InitialBuilder.clientHello(serverName: "x.example", padding: 100)
        let good = InitialBuilder.initial(destinationID: dcid, packetNumber: 0, frames: InitialBuilder.crypto(offset: 0, hello[...]), padTo: 1100)
        var cases: [(String, [[UInt8]], SNIFailure.Code)] = [
            ("empty datagram", [[]], .notQUIC),
            ("13 bytes: c0000000010000000400000000", [RFCVectors.hex("c0000000010000000400000000")], .malformedHeader),
            ("truncated after 50 bytes", [Array(RFCVectors.clientInitialV1.prefix(50))], .malformedHeader),
            ("truncated RFC packet (length past the end)", [Array(RFCVectors.clientInitialV1.prefix(1199))], .malformedHeader),
            ("version negotiation", [[0xc0, 0, 0, 0, 0, 8] + dcid.prefix(8) + [0, 0, 0, 0, 1]], .unknownVersion),
            ("draft-29", [[0xc0, 0xff, 0, 0, 0x1d] + Array(RFCVectors.clientInitialV1.dropFirst(5))], .unknownVersion),
            ("greased version", [[0xc0, 0x0a, 0x1a, 0x2a, 0x3a] + Array(RFCVectors.clientInitialV1.dropFirst(5))], .unknownVersion),
            ("short header first", [[0x40] + [UInt8](repeating: 1, count: 1199)], .notQUIC),
            ("DNS query on port 443", [RFCVectors.hex("123401000001000000000000076578616d706c6503636f6d0000010001")], .notQUIC),
            ("connection ID of 21 bytes", [[0xc0, 0, 0, 0, 1, 21] + [UInt8](repeating: 7, count: 21) + [0, 0, 0x41, 0]], .malformedHeader),
            ("length below a packet number and sample", [[0xc0, 0, 0, 0, 1, 8] + dcid.prefix(8) + [0, 0, 10] + [UInt8](repeating: 0, count: 30)], .malformedHeader),
            ("token length past the end", [[0xc0, 0, 0, 0, 1, 8] + dcid.prefix(8) + [0, 0x80, 0xff, 0xff, 0xff]], .malformedHeader),
            ("a damaged packet-number-length bit", [{ var p = good; p[0] ^= 0x01; return p }()], .decryptionFailed),
            ("a Handshake packet alone", [[0xe0, 0, 0, 0, 1, 8] + dcid.prefix(8) + [0, 0x40, 30] + [UInt8](repeating: 0, count: 30)], .notQUIC),
        ]
        // Frames that may not appear in an Initial, and cut-short frames.
        cases.append(("a STREAM frame in an Initial",
                      [InitialBuilder.initial(destinationID: dcid, packetNumber: 0, frames: [0x08, 0x00, 0x01, 0x02])], .malformedFrame))
        cases.append(("a CRYPTO frame longer than its packet",
                      [InitialBuilder.initial(destinationID: dcid, packetNumber: 0, frames: [0x06, 0x00, 0x44, 0x00, 0x01, 0x02])], .malformedFrame))
        cases.append(("an ACK frame with 2^62 ranges",
                      [InitialBuilder.initial(destinationID: dcid, packetNumber: 0, frames: [0x02, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00])], .malformedFrame))
        // CRYPTO offsets out of range, and overlapping data that disagrees.
        cases.append(("CRYPTO at offset 70,000",
                      [InitialBuilder.initial(destinationID: dcid, packetNumber: 0, frames: InitialBuilder.crypto(offset: 70_000, hello[..<10]))], .cryptoOutOfRange))
        cases.append(("CRYPTO at offset 2^62-1",
                      [InitialBuilder.initial(destinationID: dcid, packetNumber: 0, frames: [0x06] + InitialBuilder.varint((1 << 62) - 1) + [0x01, 0x00])], .cryptoOutOfRange))
        var altered = Array(hello[..<100]); altered[60] ^= 0xff
        cases.append(("overlapping CRYPTO data that disagrees",
                      [InitialBuilder.initial(destinationID: dcid, packetNumber: 0,
                                              frames: InitialBuilder.crypto(offset: 0, hello[..<100]) + InitialBuilder.crypto(offset: 40, altered[40..<100]))], .cryptoOutOfRange))
        // TLS problems.
        cases.append(("a ServerHello instead of a ClientHello",
                      [InitialBuilder.initial(destinationID: dcid, packetNumber: 0, frames: InitialBuilder.crypto(offset: 0, ([2] + hello.dropFirst())[...]))], .malformedClientHello))
        cases.append(("a ClientHello claiming 16 MB",
                      [InitialBuilder.initial(destinationID: dcid, packetNumber: 0, frames: InitialBuilder.crypto(offset: 0, [1, 0xff, 0xff, 0xff, 3, 3][...]))], .cryptoOutOfRange))
        var badLength = hello; badLength[4 + 2 + 32] = 200  // session ID length 200
        cases.append(("a session ID longer than the message",
                      [InitialBuilder.initial(destinationID: dcid, packetNumber: 0, frames: InitialBuilder.crypto(offset: 0, badLength[...]))], .malformedClientHello))
        let noName = InitialBuilder.clientHello(serverName: nil)
        cases.append(("no server_name", [InitialBuilder.initial(destinationID: dcid, packetNumber: 0, frames: InitialBuilder.crypto(offset: 0, noName[...]))], .noServerName))
        let spaced = InitialBuilder.clientHello(serverName: "bad name.example")
        cases.append(("a space in the name", [InitialBuilder.initial(destinationID: dcid, packetNumber: 0, frames: InitialBuilder.crypto(offset: 0, spaced[...]))], .malformedClientHello))
        // Never completes within the bound.
        let partial = InitialBuilder.initial(destinationID: dcid, packetNumber: 0, frames: InitialBuilder.crypto(offset: 0, hello[..<20]))
        cases.append(("a ClientHello that never completes", [partial, partial, partial, partial], .incomplete))
        return cases
    }()

    /// With a budget of as many datagrams as the case has, each case ends with its reason.
    @Test(arguments: malformed.indices)
    func malformedInputGivesAReason(index: Int) {
        let (what, datagrams, expected) = Self.malformed[index]
        let progress = Self.feed(datagrams, maxDatagrams: datagrams.count)
        #expect(Self.failure(progress.last) == expected, "\(what): \(progress)")
        for p in progress.dropLast() { #expect(p == .needMore, "\(what)") }
    }

    /// Issue 13, finding 9: bytes in which no Initial opens tell nothing about the flow, so they
    /// must not end the sniffing: the real ClientHello after them is still read.
    @Test(arguments: malformed.indices)
    func junkBeforeTheClientHelloDoesNotHideIt(index: Int) {
        let (what, datagrams, code) = Self.malformed[index]
        // Only the cases where no Initial opens but the bytes look like QUIC are passed over;
        // not-QUIC and unknown versions decide at once (the relay then sniffs later Initials on
        // the decided flow), and the others are the client's own word.
        guard [.malformedHeader, .decryptionFailed].contains(code) else { return }
        let hello = InitialBuilder.clientHello(serverName: "blocked.example")
        let real = InitialBuilder.initial(destinationID: Self.dcid, packetNumber: 0, frames: InitialBuilder.crypto(offset: 0, hello[...]))
        let progress = Self.feed(datagrams + [real], maxDatagrams: datagrams.count + 1)
        guard case .found(let found) = progress.last else {
            Issue.record("\(what): the ClientHello after it was not read: \(progress)")
            return
        }
        #expect(found.serverName == "blocked.example")
    }

    /// Damaged QUIC alone still ends the sniffing once the budget is spent, with the reason of
    /// the last; bytes that are not QUIC at all end it at once.
    @Test func junkAloneEndsAtTheBudget() {
        let damaged = Array(RFCVectors.clientInitialV1.prefix(50))
        let progress = Self.feed([damaged, damaged, damaged, damaged], maxDatagrams: 4)
        #expect(progress.dropLast().allSatisfy { $0 == .needMore })
        #expect(Self.failure(progress.last) == .malformedHeader)
        #expect(Self.failure(Self.feed([[0x01]], maxDatagrams: 4).first) == .notQUIC)
    }

    @Test func initialsAreRecognisedCheaply() {
        #expect(RFCVectors.clientInitialV1.withUnsafeBytes { InitialSniffer.startsWithInitial($0) })
        #expect(RFCVectors.clientInitialV2.withUnsafeBytes { InitialSniffer.startsWithInitial($0) })
        let handshake: [UInt8] = [0xe0, 0, 0, 0, 1, 8] + Self.dcid.prefix(8) + [0, 0x40, 30]
        #expect(!handshake.withUnsafeBytes { InitialSniffer.startsWithInitial($0) })
        #expect(![UInt8]([0x40, 1, 2, 3, 4, 5, 6, 7]).withUnsafeBytes { InitialSniffer.startsWithInitial($0) })
        #expect(![UInt8]([0xc0, 0]).withUnsafeBytes { InitialSniffer.startsWithInitial($0) })
    }

    /// Every prefix and thousands of random mutations of real Initials: no crash, no hang.
    @Test func prefixesAndMutationsNeverCrash() {
        var seed: UInt64 = 0x5eed
        func next() -> UInt64 { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return seed >> 33 }
        let samples = [(RFCVectors.clientInitialV1, "example.com"), (RFCVectors.clientInitialV2, "example.com"),
                       (InitialBuilder.initial(destinationID: Self.dcid, packetNumber: 1,
                                               frames: InitialBuilder.crypto(offset: 0, InitialBuilder.clientHello(serverName: "m.example")[...])), "m.example")]
        for (sample, name) in samples {
            for length in stride(from: 0, through: sample.count, by: 7) {
                _ = Self.feed([Array(sample.prefix(length))])
            }
            for _ in 0..<3000 {
                var m = sample
                for _ in 0..<(1 + Int(next() % 4)) { m[Int(next() % UInt64(m.count))] = UInt8(truncatingIfNeeded: next()) }
                // The AEAD tag covers the header and payload: a mutation either fails or changes
                // nothing the sniffer reads. It never yields another name.
                if case .found(let hello) = Self.feed([m])[0] { #expect(hello.serverName == name) }
            }
        }
    }
}
