import Crypto
import CryptoExtras
import Foundation

/// Removes header protection from a client Initial packet and decrypts its payload (RFC 9001
/// §5.3–5.4): AES-ECB over a 16-byte sample gives the mask for the first byte and the packet
/// number, then AES-128-GCM opens the payload with the unmasked header as associated data.
/// Works on copies; the datagram, which is relayed as it came, is never changed.
enum InitialPacketOpener {
    /// The plaintext frames of the Initial packet described by `header`.
    static func open(_ datagram: UnsafeRawBufferPointer, header: LongHeader, keys: InitialKeys) -> Result<[UInt8], SNIFailure> {
        let pnOffset = header.packetNumberOffset
        // LongHeader.parse guarantees pnOffset + 20 <= end <= datagram.count.
        var mask = Array(datagram[(pnOffset + 4)..<(pnOffset + 20)])
        do {
            try AES.permute(&mask, key: keys.headerProtection)
        } catch {
            return .failure(SNIFailure(.decryptionFailed, "header protection: \(error)"))
        }
        let first = datagram[header.start] ^ (mask[0] & 0x0f)
        let pnLength = Int(first & 0x03) + 1
        var aad = Array(datagram[(header.start)..<(pnOffset + pnLength)])
        aad[0] = first
        var packetNumber: UInt64 = 0
        for i in 0..<pnLength {
            aad[aad.count - pnLength + i] ^= mask[1 + i]
            packetNumber = packetNumber << 8 | UInt64(aad[aad.count - pnLength + i])
        }
        let payloadStart = pnOffset + pnLength
        guard header.end - payloadStart >= 16 + 1 else {
            return .failure(SNIFailure(.malformedHeader, "payload shorter than the AEAD tag"))
        }
        var nonce = keys.iv
        for i in 0..<8 { nonce[11 - i] ^= UInt8(truncatingIfNeeded: packetNumber >> (8 * UInt64(i))) }
        do {
            let box = try AES.GCM.SealedBox(
                nonce: AES.GCM.Nonce(data: nonce),
                ciphertext: datagram[payloadStart..<(header.end - 16)],
                tag: datagram[(header.end - 16)..<header.end])
            let plain = try AES.GCM.open(box, using: keys.key, authenticating: aad)
            return .success(Array(plain))
        } catch {
            return .failure(SNIFailure(.decryptionFailed, "packet number \(packetNumber): the AEAD tag does not verify"))
        }
    }
}
