/// What the relay reads from a TLS 1.3 ClientHello (RFC 8446 §4.1.2): the server name
/// (RFC 6066 §3) and the ALPN protocols (RFC 7301). Every length is checked against its
/// enclosing one; a name must be a plausible host name (printable, no spaces, at most 255 bytes)
/// and is lower-cased, since rules compare names without case.
public struct ClientHello: Equatable, Sendable {
    public var serverName: String?
    public var alpn: [String]

    public init(serverName: String?, alpn: [String]) {
        self.serverName = serverName
        self.alpn = alpn
    }

    /// How many bytes the handshake message at the start of `stream` needs (4-byte header
    /// included), or nil while fewer than 4 bytes are known.
    static func messageLength(_ stream: UnsafeRawBufferPointer) -> Int? {
        guard stream.count >= 4 else { return nil }
        return 4 + (Int(stream[1]) << 16 | Int(stream[2]) << 8 | Int(stream[3]))
    }

    /// Parses the complete handshake message in `message` (type, 3-byte length, body).
    static func parse(_ message: UnsafeRawBufferPointer) -> Result<ClientHello, SNIFailure> {
        var r = ByteReader(message)
        guard let type = r.u8(), type == 1 else {
            return .failure(SNIFailure(.malformedClientHello, "the CRYPTO stream starts with handshake type \(message.first ?? 0), not ClientHello (1)"))
        }
        guard let length = r.u24(), let bodyBytes = r.take(length) else {
            return .failure(SNIFailure(.malformedClientHello, "ClientHello shorter than its length"))
        }
        var body = ByteReader(bodyBytes)
        guard body.u16() != nil, body.skip(32),  // legacy_version, random
              let sessionID = body.vector(prefix: 1), sessionID.count <= 32,
              let suites = body.vector(prefix: 2), suites.count % 2 == 0,
              body.vector(prefix: 1) != nil else {  // legacy_compression_methods
            return .failure(SNIFailure(.malformedClientHello, "ClientHello fields run past the message"))
        }
        var hello = ClientHello(serverName: nil, alpn: [])
        if body.isAtEnd { return .failure(SNIFailure(.noServerName, "ClientHello without extensions")) }
        guard let extensionBytes = body.vector(prefix: 2) else {
            return .failure(SNIFailure(.malformedClientHello, "extensions run past the message"))
        }
        var extensions = ByteReader(extensionBytes)
        while !extensions.isAtEnd {
            guard let type = extensions.u16(), let data = extensions.vector(prefix: 2) else {
                return .failure(SNIFailure(.malformedClientHello, "an extension runs past the extensions block"))
            }
            switch type {
            case 0:  // server_name
                switch serverName(data) {
                case .success(let name): hello.serverName = name
                case .failure(let failure): return .failure(failure)
                }
            case 16:  // application_layer_protocol_negotiation
                var list = ByteReader(data)
                guard let protocols = list.vector(prefix: 2), list.isAtEnd else {
                    return .failure(SNIFailure(.malformedClientHello, "malformed ALPN extension"))
                }
                var names = ByteReader(protocols)
                while !names.isAtEnd {
                    guard let name = names.vector(prefix: 1), !name.isEmpty else {
                        return .failure(SNIFailure(.malformedClientHello, "malformed ALPN protocol name"))
                    }
                    hello.alpn.append(String(decoding: name, as: UTF8.self))
                }
            default:
                continue
            }
        }
        guard hello.serverName != nil else { return .failure(SNIFailure(.noServerName, "ClientHello without a server_name extension")) }
        return .success(hello)
    }

    private static func serverName(_ data: UnsafeRawBufferPointer) -> Result<String, SNIFailure> {
        var r = ByteReader(data)
        guard let list = r.vector(prefix: 2), r.isAtEnd else {
            return .failure(SNIFailure(.malformedClientHello, "malformed server_name extension"))
        }
        var names = ByteReader(list)
        while !names.isAtEnd {
            guard let kind = names.u8(), let name = names.vector(prefix: 2) else {
                return .failure(SNIFailure(.malformedClientHello, "malformed server_name entry"))
            }
            guard kind == 0 else { continue }  // host_name is the only type defined
            guard !name.isEmpty, name.count <= 255 else {
                return .failure(SNIFailure(.malformedClientHello, "server name of \(name.count) bytes"))
            }
            var bytes = [UInt8]()
            bytes.reserveCapacity(name.count)
            for b in name {
                guard b > 0x20, b < 0x7f else {
                    return .failure(SNIFailure(.malformedClientHello, "server name holds byte 0x\(String(b, radix: 16))"))
                }
                bytes.append(b >= 0x41 && b <= 0x5a ? b | 0x20 : b)
            }
            if bytes.last == UInt8(ascii: ".") { bytes.removeLast() }
            return .success(String(decoding: bytes, as: UTF8.self))
        }
        return .failure(SNIFailure(.noServerName, "server_name extension without a host name"))
    }
}
