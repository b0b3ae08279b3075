import ClientNames
import DNS

/// What a client's name comes from, all untrusted: a hosts file, a lease file in any of the
/// three formats (the first byte picks a forced format, the rest is the file), and the answer
/// to a PTR lookup (any bytes from the network).
enum ClientNamesTarget {
    @Sendable static func run(_ data: UnsafeRawBufferPointer) {
        let bytes = Array(data)
        _ = HostsFile.parse(bytes, file: "fuzz.hosts")
        _ = LeaseFile.parse(bytes, file: "fuzz.leases")
        if let first = bytes.first {
            let prefix: [UInt8] = first % 3 == 0 ? Array("address,hostname,state\n".utf8) : first % 3 == 1 ? Array("lease 10.0.0.1 {\n".utf8) : []
            _ = LeaseFile.parse(prefix + bytes.dropFirst(), file: "fuzz.leases")
        }
        if data.count >= 2 {
            _ = ReverseName.answer(data, id: UInt16(data[0]) << 8 | UInt16(data[1]))
        }
    }
}
