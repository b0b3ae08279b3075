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
    public mutating func feed(_ datagram: UnsafeRawBufferPointer) -> Progress {
        if let finished { return finished }
        let progress = read(datagram)
        if progress != .needMore { finished = progress }
        return progress
    }

    private mutating func read(_ datagram: UnsafeRawBufferPointer) -> Progress {
        datagrams += 1
        var offset = 0
        var sawInitial = false
        packets: while offset < datagram.count {
            // A short-header packet (or padding after the last packet) ends the long ones.
            if datagram[offset] & 0x80 == 0 {
                if offset == 0 && datagrams == 1 { return .failed(SNIFailure(.notQUIC, "the first datagram does not start with a long header")) }
                break packets
            }
            let header: LongHeader
            switch LongHeader.parse(datagram, at: offset) {
            case .success(let h): header = h
            case .failure(let failure):
                // Trailing bytes after a complete packet are not ours to judge.
                if sawInitial && failure.code == .malformedHeader { break packets }
                return .failed(failure)
            }
            if version == nil { version = header.version }
            offset = header.end
            guard header.kind == .initial, let known = QUICVersion.named(header.version) else {
                if header.kind == .retry { break packets }
                continue
            }
            sawInitial = true
            let destinationID = Array(datagram[header.destinationID])
            if keys == nil || keys!.destinationID != destinationID {
                keys = (destinationID, InitialKeys(version: known, destinationID: destinationID))
            }
            let plain: [UInt8]
            switch InitialPacketOpener.open(datagram, header: header, keys: keys!.keys) {
            case .success(let p): plain = p
            case .failure(let failure): return .failed(failure)
            }
            let failure = plain.withUnsafeBytes { payload in
                InitialFrames.walk(payload) { cryptoOffset, data in stream.add(offset: cryptoOffset, data: data) }
            }
            if let failure { return .failed(failure) }
        }
        if datagrams == 1 && !sawInitial {
            return .failed(SNIFailure(.notQUIC, "the first datagram holds no Initial packet"))
        }
        let available = stream.contiguous
        let result: Progress? = stream.bytes.withUnsafeBytes { all in
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
        if let result { return result }
        if datagrams >= maxDatagrams {
            return .failed(SNIFailure(.incomplete, "\(available) bytes of ClientHello after \(datagrams) datagrams"))
        }
        return .needMore
    }
}
