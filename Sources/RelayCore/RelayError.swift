/// An error the relay reports to a person: an opaque kind to branch on and a reason to print.
///
/// Modelled on swift-certificates' error struct: the code set can grow without breaking callers,
/// and the reason carries the specifics (which file, which interface, which syscall).
public struct RelayError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong, coarsely; compare with the static members.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The configuration is invalid (the reason names file, line and key).
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// The process lacks a privilege it needs (CAP_NET_ADMIN).
        public static let permissionDenied = Code("permissionDenied")
        /// A named network interface does not exist.
        public static let noSuchInterface = Code("noSuchInterface")
        /// Another process holds the interception table.
        public static let interceptionBusy = Code("interceptionBusy")
        /// A netlink request to the kernel failed.
        public static let netlink = Code("netlink")
        /// A socket call failed.
        public static let socket = Code("socket")
        /// A lab command failed.
        public static let lab = Code("lab")
    }

    public var code: Code
    public var reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { reason }
}
