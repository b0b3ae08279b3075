/// A long-header packet's fields as offsets into its datagram (RFC 9000 §17.2, RFC 8999 for the
/// version-independent part). Parsing never reads past the datagram: every field is checked
/// against what is left, and a packet's `end` never passes the datagram's end.
public struct LongHeader: Equatable {
    public enum Kind: Equatable { case initial, zeroRTT, handshake, retry }

    /// Where the packet starts in its datagram (its first byte).
    public let start: Int
    public let version: UInt32
    public let kind: Kind
    /// The Destination Connection ID, as a range of the datagram.
    public let destinationID: Range<Int>
    public let sourceID: Range<Int>
    /// Where the (protected) packet number starts; Initial, 0-RTT and Handshake only.
    public let packetNumberOffset: Int
    /// Past this packet: where a coalesced packet may start (the datagram's end for Retry).
    public let end: Int

    /// The packet that starts at `start`. Versions other than 1 and 2 parse only as far as the
    /// invariants go and come back as `.unknownVersion`.
    public static func parse(_ datagram: UnsafeRawBufferPointer, at start: Int) -> Result<LongHeader, SNIFailure> {
        var r = ByteReader(datagram, offset: start)
        guard let first = r.u8() else { return .failure(SNIFailure(.malformedHeader, "empty packet")) }
        guard first & 0x80 != 0 else { return .failure(SNIFailure(.notQUIC, "short header where a long header was expected")) }
        guard let version = r.u32() else { return .failure(SNIFailure(.malformedHeader, "truncated version")) }
        guard let known = QUICVersion.named(version) else {
            return .failure(SNIFailure(.unknownVersion, version == 0 ? "version negotiation" : "version \(QUICVersion.name(version))"))
        }
        guard let dcidLength = r.u8(), dcidLength <= 20, r.skip(Int(dcidLength)) else {
            return .failure(SNIFailure(.malformedHeader, "destination connection ID longer than 20 bytes or truncated"))
        }
        let destinationID = (r.offset - Int(dcidLength))..<r.offset
        guard let scidLength = r.u8(), scidLength <= 20, r.skip(Int(scidLength)) else {
            return .failure(SNIFailure(.malformedHeader, "source connection ID longer than 20 bytes or truncated"))
        }
        let sourceID = (r.offset - Int(scidLength))..<r.offset
        let type = (first >> 4) & 0x03
        // v2 rotates the type bits by one (RFC 9369 §3.2).
        let kinds: [Kind] = [.initial, .zeroRTT, .handshake, .retry]
        let kind = kinds[Int((type &- known.initialType) & 0x03)]
        if kind == .retry {
            return .success(LongHeader(start: start, version: version, kind: kind, destinationID: destinationID, sourceID: sourceID,
                                       packetNumberOffset: datagram.count, end: datagram.count))
        }
        if kind == .initial {
            guard let tokenLength = r.varint(), tokenLength <= UInt64(r.remaining), r.skip(Int(tokenLength)) else {
                return .failure(SNIFailure(.malformedHeader, "token length past the datagram"))
            }
        }
        guard let length = r.varint() else { return .failure(SNIFailure(.malformedHeader, "truncated length")) }
        guard length <= UInt64(r.remaining) else {
            return .failure(SNIFailure(.malformedHeader, "length \(length) past the datagram (\(r.remaining) bytes left)"))
        }
        // A packet number (up to 4 bytes) and a 16-byte header-protection sample must fit.
        guard length >= 20 else { return .failure(SNIFailure(.malformedHeader, "length \(length) leaves no room for a protected payload")) }
        return .success(LongHeader(start: start, version: version, kind: kind, destinationID: destinationID, sourceID: sourceID,
                                   packetNumberOffset: r.offset, end: r.offset + Int(length)))
    }
}
