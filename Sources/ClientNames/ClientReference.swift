import RelayCore

/// A client as a person writes it in `explain --client` or the dashboard's explain form: an
/// address, or a name the `clients.names` files give.
public enum ClientReference: Equatable, Sendable {
    case address(IPAddress)
    /// A name and every address the files give it, in file order (never empty).
    case named(String, [IPAddress])
    /// A well-formed name no file gives an address.
    case unknownName(String)
    /// Digits and dots, or a colon: meant as an address, and not one (`10.53.1`).
    case badAddress
    /// Neither an address nor a client name.
    case invalid

    public init(_ text: String, names: ClientNameTable) {
        if let address = IPAddress(text) {
            self = .address(address)
        } else if text.contains(":") || (text.contains(where: \.isNumber) && text.allSatisfy { $0.isASCII && ($0.isNumber || $0 == ".") }) {
            self = .badAddress
        } else if let name = ClientNameText.normalize(text) {
            let addresses = names.addresses(named: name)
            self = addresses.isEmpty ? .unknownName(name) : .named(name, addresses)
        } else {
            self = .invalid
        }
    }

    /// The address to explain for (a name's first), nil when there is none.
    public var address: IPAddress? {
        switch self {
        case .address(let address): address
        case .named(_, let addresses): addresses.first
        case .unknownName, .badAddress, .invalid: nil
        }
    }

    /// Why there is no address, for an error message.
    public var problem: String? {
        switch self {
        case .address, .named: nil
        case .unknownName(let name): "no clients.names hosts or leases file gives '\(name)' an address"
        case .badAddress: "it is not an IP address"
        case .invalid: "it is neither an IP address nor a client name"
        }
    }
}
