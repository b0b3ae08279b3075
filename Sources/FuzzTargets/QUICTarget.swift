import QUIC

/// A flow's first client datagrams (pieces of the input), fed to a sniffer in order.
enum QUICTarget {
    @Sendable static func run(_ data: UnsafeRawBufferPointer) {
        var sniffer = InitialSniffer(maxDatagrams: 4)
        for datagram in Pieces(data).prefix(6) {
            _ = InitialSniffer.startsWithInitial(datagram)
            if case .found = sniffer.feed(datagram) { return }
        }
    }
}

/// Decrypted Initial payloads (pieces of the input): frames, CRYPTO reassembly, ClientHello.
enum QUICPlaintextTarget {
    @Sendable static func run(_ data: UnsafeRawBufferPointer) {
        let payloads = Array(Pieces(data).prefix(8))
        _ = InitialPlaintext.read(payloads, cryptoLimit: 16 << 10)
    }
}
