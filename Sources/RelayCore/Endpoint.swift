/// An IP address and a UDP/TCP port: a client, an original destination, an upstream server.
public struct Endpoint: Hashable, Sendable {
    public var address: IPAddress
    public var port: UInt16

    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// Parses `10.53.2.53`, `10.53.2.53:53`, `fd53:2::53`, `[fd53:2::53]` or `[fd53:2::53]:53`.
    /// A missing port is `defaultPort`. Returns nil for anything else.
    public init?(parsing text: String, defaultPort: UInt16) {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let host = String(text[text.index(after: text.startIndex)..<close])
            guard let address = IPAddress(host), address.isIPv6 else { return nil }
            let rest = text[text.index(after: close)...]
            if rest.isEmpty {
                self.init(address: address, port: defaultPort)
            } else if rest.first == ":", let port = UInt16(rest.dropFirst()), port != 0 {
                self.init(address: address, port: port)
            } else {
                return nil
            }
            return
        }
        if let address = IPAddress(text) {
            self.init(address: address, port: defaultPort)
            return
        }
        // host:port is only unambiguous for IPv4; bare IPv6 was handled above.
        guard let colon = text.lastIndex(of: ":"),
              case .v4? = IPAddress(String(text[..<colon])),
              let address = IPAddress(String(text[..<colon])),
              let port = UInt16(text[text.index(after: colon)...]), port != 0
        else { return nil }
        self.init(address: address, port: port)
    }
}

extension Endpoint: CustomStringConvertible {
    /// `10.53.2.53:53` or `[fd53:2::53]:53`, the form the query log uses.
    public var description: String {
        switch address {
        case .v4: return "\(address):\(port)"
        case .v6: return "[\(address)]:\(port)"
        }
    }
}
