import Crypto
import Foundation
import Testing
@testable import QUIC

/// RFC 9001 and RFC 9369 Appendix A, and the builder the other tests rely on checked against it.
@Suite struct InitialPacketTests {
    static func hex(_ key: SymmetricKey) -> String { key.withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() } }
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test func version1ClientKeysMatchRFC9001() {
        let keys = InitialKeys(version: .v1, destinationID: RFCVectors.destinationID)
        #expect(Self.hex(keys.key) == "1f369613dd76d5467730efcbe3b1a22d")
        #expect(Self.hex(keys.iv) == "fa044b2f42a3fd3b46fb255c")
        #expect(Self.hex(keys.headerProtection) == "9f50449e04a0e810283a1e9933adedd2")
        let server = InitialKeys(version: .v1, destinationID: RFCVectors.destinationID, client: false)
        #expect(Self.hex(server.key) == "cf3a5331653c364c88f0f379b6067e37")
    }

    @Test func version2ClientKeysMatchRFC9369() {
        let keys = InitialKeys(version: .v2, destinationID: RFCVectors.destinationID)
        #expect(Self.hex(keys.key) == "8b1a0bc121284290a29e0971b5cd045d")
        #expect(Self.hex(keys.iv) == "91f73e2351d8fa91660e909f")
        #expect(Self.hex(keys.headerProtection) == "45b95e15235d6f45a6b19cbcb0294ba9")
    }

    static let vectors = [(QUICVersion.v1, RFCVectors.clientInitialV1), (QUICVersion.v2, RFCVectors.clientInitialV2)]

    @Test(arguments: [1, 2])
    func theRFCClientInitialDecryptsToItsClientHello(version number: Int) throws {
        let (version, packet) = Self.vectors[number - 1]
        #expect(packet.count == 1200)
        let plain: [UInt8] = try packet.withUnsafeBytes { datagram in
            let header = try LongHeader.parse(datagram, at: 0).get()
            #expect(header.version == version.number)
            #expect(header.kind == .initial)
            #expect(Array(datagram[header.destinationID]) == RFCVectors.destinationID)
            #expect(header.end == 1200)
            return try InitialPacketOpener.open(datagram, header: header,
                                                keys: InitialKeys(version: version, destinationID: RFCVectors.destinationID)).get()
        }
        #expect(plain.count == 1162)
        #expect(Self.hex(Array(plain.prefix(RFCVectors.clientInitialFrames.count))) == Self.hex(RFCVectors.clientInitialFrames))
        #expect(plain.dropFirst(RFCVectors.clientInitialFrames.count).allSatisfy { $0 == 0 })

        var sniffer = InitialSniffer()
        let progress = packet.withUnsafeBytes { sniffer.feed($0) }
        #expect(progress == .found(ClientHello(serverName: "example.com", alpn: ["alpn"])))
        #expect(sniffer.version == version.number)
    }

    /// The builder the other tests use produces the RFC's packet exactly (A.2: packet number 2
    /// in 4 bytes, payload padded to 1,162 bytes).
    @Test(arguments: [1, 2])
    func theTestBuilderReproducesTheRFCPacket(version number: Int) {
        let (version, packet) = Self.vectors[number - 1]
        let built = InitialBuilder.initial(version: version, destinationID: RFCVectors.destinationID, packetNumber: 2,
                                           frames: RFCVectors.clientInitialFrames, padTo: 1162)
        #expect(Self.hex(built) == Self.hex(packet))
    }

    @Test func aDamagedTagIsADecryptionFailure() {
        var packet = RFCVectors.clientInitialV1
        packet[600] ^= 1
        var sniffer = InitialSniffer(maxDatagrams: 1)
        let progress = packet.withUnsafeBytes { sniffer.feed($0) }
        guard case .failed(let failure) = progress else { Issue.record("expected a failure, got \(progress)"); return }
        #expect(failure.code == .decryptionFailed)
    }
}
