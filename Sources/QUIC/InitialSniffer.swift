/// Reads the server name from a QUIC flow's first client datagrams: finds every Initial packet
/// in each datagram (coalesced packets included), derives the keys from the first Initial's
/// Destination Connection ID, decrypts, reassembles the CRYPTO stream across frames, packets and
/// datagrams, and parses the ClientHello once it is whole. One per flow, fed in arrival order;
/// bounded by `maxDatagrams` and by the assembler's byte limit.
public struct InitialSniffer {
    public enum Progress: Equatable {
        /// The ClientHello is not complete yet: feed the flow's next datagram.
        case needMore
        case found(ClientHello)
        case failed(SNIFailure)
    }

    public let maxDatagrams: Int
    /// The version of the first Initial seen (nil before one was parsed).
    public private(set) var version: UInt32?
    public private(set) var datagrams = 0
    private var keys: (destinationID: [UInt8], keys: InitialKeys)?
    private var stream: CryptoStreamAssembler
    private var finished: Progress?

    /// `cryptoLimit`: bytes of CRYPTO stream held at most (64 KiB).
    public init(maxDatagrams: Int = 4, cryptoLimit: Int = 64 << 10) {
        self.maxDatagrams = maxDatagrams
        stream = CryptoStreamAssembler(limit: cryptoLimit)
    }

    /// Feeds the flow's next client datagram. Once a result other than `.needMore` came back,
    /// the same result comes back for every later datagram.
    ///
    /// A datagram that looks like QUIC but in which no Initial packet opens (a truncated or
    /// damaged packet, one that fails to decrypt) is passed over: anyone on the path, the client
    /// included, can send such bytes first, and letting them end the sniffing would let the real
    /// ClientHello that follows through unread (issue 13). Only after `maxDatagrams` datagrams
    /// does the sniffer give up, naming the last thing that went wrong. A first datagram that is
    /// not QUIC at all ends it at once (see `read`).
    public mutating func feed(_ datagram: UnsafeRawBufferPointer) -> Progress {
        if let finished { return finished }
        let progress = read(datagram)
        if progress != .needMore { finished = progress }
        return progress
    }

    /// Whether `datagram` starts with a long-header Initial packet of a version whose keys are
    /// known: the cheap test for datagrams worth sniffing on a flow that is already relaying.
    @inline(__always)
    public static func startsWithInitial(_ datagram: UnsafeRawBufferPointer) -> Bool {
        guard datagram.count >= 7, datagram[0] & 0x80 != 0 else { return false }
        let version = UInt32(datagram[1]) << 24 | UInt32(datagram[2]) << 16 | UInt32(datagram[3]) << 8 | UInt32(datagram[4])
        guard let known = QUICVersion.named(version) else { return false }
        return (datagram[0] >> 4) & 0x03 == known.initialType
    }

    /// What went wrong with the last datagram that was passed over.
    private var lastFailure: SNIFailure?

    private mutating func read(_ datagram: UnsafeRawBufferPointer) -> Progress {
        datagrams += 1
        switch readPackets(datagram) {
        case .opened:
            break
        case .passedOver(let failure):
            lastFailure = failure
            // A first datagram that is not QUIC at all (no long header) or of a version with
            // unknown keys decides at once, as it always did: holding it would delay every
            // non-QUIC UDP 443 flow (WireGuard, DTLS) by the hold time. That is safe because the
            // relay also sniffs Initials arriving on a flow already decided (Worker+QUIC).
            if datagrams == 1 && (failure.code == .notQUIC || failure.code == .unknownVersion) { return .failed(failure) }
            return datagrams >= maxDatagrams ? .failed(failure) : .needMore
        case .failed(let failure):
            return .failed(failure)
        }
        return readClientHello()
    }

    private enum DatagramOutcome {
        /// At least one Initial packet opened and its frames were taken.
        case opened
        /// No Initial packet opened in this datagram: it tells nothing about the flow.
        case passedOver(SNIFailure)
        /// An Initial opened (so the bytes are the client's own) and what it carried is malformed.
        case failed(SNIFailure)
    }

    private mutating func readPackets(_ datagram: UnsafeRawBufferPointer) -> DatagramOutcome {
        var offset = 0
        var opened = false
        while offset < datagram.count {
            // A short-header packet (or padding after the last packet) ends the long ones.
            if datagram[offset] & 0x80 == 0 {
                if offset == 0 { return .passedOver(SNIFailure(.notQUIC, "a datagram does not start with a long header")) }
                break
            }
            let header: LongHeader
            switch LongHeader.parse(datagram, at: offset) {
            case .success(let h): header = h
            case .failure(let failure):
                // Trailing bytes after a complete packet are not ours to judge.
                if opened { return .opened }
                return .passedOver(failure)
            }
            offset = header.end
            guard header.kind == .initial, let known = QUICVersion.named(header.version) else {
                if header.kind == .retry { break }
                continue
            }
            let destinationID = Array(datagram[header.destinationID])
            let candidate = keys?.destinationID == destinationID ? keys!.keys : InitialKeys(version: known, destinationID: destinationID)
            let plain: [UInt8]
            switch InitialPacketOpener.open(datagram, header: header, keys: candidate) {
            case .success(let p): plain = p
            case .failure(let failure):
                if opened { return .opened }
                return .passedOver(failure)
            }
            // Keys (and the version) are taken from the first Initial that really opens.
            if keys?.destinationID != destinationID { keys = (destinationID, candidate) }
            if version == nil { version = header.version }
            opened = true
            let failure = plain.withUnsafeBytes { payload in
                InitialFrames.walk(payload) { cryptoOffset, data in stream.add(offset: cryptoOffset, data: data) }
            }
            if let failure { return .failed(failure) }
        }
        return opened ? .opened : .passedOver(lastFailure ?? SNIFailure(.notQUIC, "a datagram holds no Initial packet"))
    }

    private mutating func readClientHello() -> Progress {
        if let result = Self.clientHello(in: stream) { return result }
        if datagrams >= maxDatagrams {
            return .failed(SNIFailure(.incomplete, "\(stream.contiguous) bytes of ClientHello after \(datagrams) datagrams"))
        }
        return .needMore
    }

    /// The ClientHello at the start of `stream` once it is whole, a failure once it cannot be,
    /// or nil while more CRYPTO data is needed.
    static func clientHello(in stream: CryptoStreamAssembler) -> Progress? {
        let available = stream.contiguous
        return stream.bytes.withUnsafeBytes { all in
            let prefix = UnsafeRawBufferPointer(rebasing: all[0..<available])
            guard let needed = ClientHello.messageLength(prefix) else { return nil }
            if prefix.count >= 1 && prefix[0] != 1 {
                return .failed(SNIFailure(.malformedClientHello, "the CRYPTO stream starts with handshake type \(prefix[0]), not ClientHello (1)"))
            }
            guard needed <= stream.limit else {
                return .failed(SNIFailure(.cryptoOutOfRange, "a ClientHello of \(needed) bytes exceeds the \(stream.limit)-byte bound"))
            }
            guard available >= needed else { return nil }
            switch ClientHello.parse(UnsafeRawBufferPointer(rebasing: prefix[0..<needed])) {
            case .success(let hello): return .found(hello)
            case .failure(let failure): return .failed(failure)
            }
        }
    }
}

/// The layers behind an Initial's decryption (frames, CRYPTO reassembly, the ClientHello), open
/// to callers that hold plaintext: fuzz targets and tests. A fuzzer cannot forge AEAD tags, so
/// through `InitialSniffer` it never reaches these layers; here it can.
public enum InitialPlaintext {
    /// Walks the frames of each decrypted Initial payload in order, assembles their CRYPTO data
    /// (bounded by `cryptoLimit`), and reads the ClientHello: what `InitialSniffer` would make of
    /// packets carrying these payloads.
    public static func read(_ payloads: [UnsafeRawBufferPointer], cryptoLimit: Int = 64 << 10) -> InitialSniffer.Progress {
        var stream = CryptoStreamAssembler(limit: cryptoLimit)
        for payload in payloads {
            if let failure = InitialFrames.walk(payload, crypto: { offset, data in stream.add(offset: offset, data: data) }) {
                return .failed(failure)
            }
        }
        return InitialSniffer.clientHello(in: stream) ?? .needMore
    }
}
