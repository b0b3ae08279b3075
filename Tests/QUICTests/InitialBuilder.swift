import Crypto
import CryptoExtras
import Foundation
@testable import QUIC

/// Builds client Initial packets the way a QUIC client does (RFC 9001 §5): the test's stand-in
/// for Chrome, Firefox and quic-go, so that the sniffer can be fed every shape they produce.
/// Checked against RFC 9001 Appendix A.2 byte for byte (InitialPacketTests).
enum InitialBuilder {
    /// A TLS 1.3 ClientHello handshake message; `padding` bytes of a padding extension make it
    /// as large as a post-quantum key share does.
    static func clientHello(serverName: String?, alpn: [String] = ["h3"], padding: Int = 0) -> [UInt8] {
        var extensions: [UInt8] = []
        func ext(_ type: UInt16, _ data: [UInt8]) {
            extensions += [UInt8(type >> 8), UInt8(type & 0xff), UInt8(data.count >> 8), UInt8(data.count & 0xff)] + data
        }
        if let serverName {
            let name = Array(serverName.utf8)
            let entry: [UInt8] = [0, UInt8(name.count >> 8), UInt8(name.count & 0xff)] + name
            ext(0, [UInt8(entry.count >> 8), UInt8(entry.count & 0xff)] + entry)
        }
        if !alpn.isEmpty {
            var list: [UInt8] = []
            for p in alpn { list += [UInt8(p.utf8.count)] + Array(p.utf8) }
            ext(16, [UInt8(list.count >> 8), UInt8(list.count & 0xff)] + list)
        }
        ext(43, [2, 0x03, 0x04])  // supported_versions: TLS 1.3
        if padding > 0 { ext(21, [UInt8](repeating: 0, count: padding)) }
        var body: [UInt8] = [0x03, 0x03] + [UInt8](repeating: 0x5a, count: 32) + [0]  // version, random, no session
        body += [0, 2, 0x13, 0x01, 1, 0]  // one suite, null compression
        body += [UInt8(extensions.count >> 8), UInt8(extensions.count & 0xff)] + extensions
        return [1, UInt8(body.count >> 16), UInt8((body.count >> 8) & 0xff), UInt8(body.count & 0xff)] + body
    }

    /// A CRYPTO frame.
    static func crypto(offset: Int, _ data: ArraySlice<UInt8>) -> [UInt8] {
        [0x06] + varint(UInt64(offset)) + varint(UInt64(data.count)) + Array(data)
    }

    static func varint(_ v: UInt64) -> [UInt8] {
        switch v {
        case ..<64: return [UInt8(v)]
        case ..<16384: return [UInt8(0x40 | (v >> 8)), UInt8(v & 0xff)]
        case ..<(1 << 30): return [UInt8(0x80 | (v >> 24)), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)]
        default: return [0xc0] + (0..<7).reversed().map { UInt8((v >> (8 * UInt64($0))) & 0xff) }
        }
    }

    /// One protected Initial packet carrying `frames`, padded with PADDING frames to `padTo`
    /// payload bytes. `packetNumberLength` is 1 to 4.
    static func initial(version: QUICVersion = .v1, destinationID: [UInt8], sourceID: [UInt8] = [],
                        token: [UInt8] = [], packetNumber: UInt64, packetNumberLength: Int = 4,
                        frames: [UInt8], padTo: Int = 0) -> [UInt8] {
        var payload = frames
        if payload.count < padTo { payload += [UInt8](repeating: 0, count: padTo - payload.count) }
        let keys = InitialKeys(version: version, destinationID: destinationID)
        let first = 0xc0 | (version.initialType << 4) | UInt8(packetNumberLength - 1)
        var header: [UInt8] = [first]
        header += (0..<4).reversed().map { UInt8((version.number >> (8 * UInt32($0))) & 0xff) }
        header += [UInt8(destinationID.count)] + destinationID + [UInt8(sourceID.count)] + sourceID
        header += varint(UInt64(token.count)) + token
        let length = packetNumberLength + payload.count + 16
        header += length < 16384 ? [UInt8(0x40 | (length >> 8)), UInt8(length & 0xff)] : varint(UInt64(length))
        let pnOffset = header.count
        header += (0..<packetNumberLength).reversed().map { UInt8((packetNumber >> (8 * UInt64($0))) & 0xff) }
        var nonce = keys.iv
        for i in 0..<8 { nonce[11 - i] ^= UInt8(truncatingIfNeeded: packetNumber >> (8 * UInt64(i))) }
        let sealed = try! AES.GCM.seal(payload, using: keys.key, nonce: AES.GCM.Nonce(data: nonce), authenticating: header)
        var packet = header + Array(sealed.ciphertext) + Array(sealed.tag)
        var mask = Array(packet[(pnOffset + 4)..<(pnOffset + 20)])
        try! AES.permute(&mask, key: keys.headerProtection)
        packet[0] ^= mask[0] & 0x0f
        for i in 0..<packetNumberLength { packet[pnOffset + i] ^= mask[1 + i] }
        return packet
    }
}
