import Crypto
import Foundation

/// The client's Initial packet-protection keys (RFC 9001 §5.2, RFC 9369 §3.3.1): derived from
/// the Destination Connection ID of the client's first Initial, so anyone on the path can derive
/// them, which is what lets the relay read the ClientHello.
public struct InitialKeys {
    /// AEAD_AES_128_GCM key, IV and header-protection key.
    public let key: SymmetricKey
    public let iv: [UInt8]
    public let headerProtection: SymmetricKey

    public init(version: QUICVersion, destinationID: some Collection<UInt8>, client: Bool = true) {
        let initialSecret = HKDF<SHA256>.extract(inputKeyMaterial: SymmetricKey(data: Array(destinationID)), salt: version.salt)
        let secret = Self.expandLabel(initialSecret, client ? "client in" : "server in", length: 32)
        key = Self.expandLabel(secret, version.keyLabel, length: 16)
        iv = Self.expandLabel(secret, version.ivLabel, length: 12).withUnsafeBytes { Array($0) }
        headerProtection = Self.expandLabel(secret, version.hpLabel, length: 16)
    }

    /// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
    static func expandLabel(_ secret: some ContiguousBytes, _ label: String, length: Int) -> SymmetricKey {
        let full = Array("tls13 \(label)".utf8)
        var info: [UInt8] = [UInt8(length >> 8), UInt8(length & 0xff), UInt8(full.count)]
        info += full
        info.append(0)
        return HKDF<SHA256>.expand(pseudoRandomKey: secret, info: info, outputByteCount: length)
    }
}
