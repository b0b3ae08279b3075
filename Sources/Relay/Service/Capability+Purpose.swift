import LinuxNet

extension SystemInfo.Capability {
    /// What the relay needs the capability for, in the refusal that names it.
    var purpose: String {
        switch self {
        case .netAdmin: return "the nft table, policy routes, SO_MARK"
        case .netRaw: return "transparent sockets that send from the addresses clients asked"
        case .netBindService: return "reply sockets bound to port 53 of the addresses clients asked"
        }
    }
}
