#if canImport(Glibc)
import Glibc
#endif
import CNetfilter
import RelayCore

/// How this host reaches an address, as the kernel's own route lookup says (`ip route get`,
/// over rtnetlink): the interface and the next hop. `check` uses it to say whether an upstream's
/// answers to a client's address can come back through this host (`client_identity: source`).
public struct RouteLookup: Equatable, Sendable {
    /// The outgoing interface's name.
    public var interface: String
    /// The next hop, or nil when the address is on a directly connected network.
    public var gateway: IPAddress?

    public init(interface: String, gateway: IPAddress?) {
        self.interface = interface
        self.gateway = gateway
    }

    /// The route to `address`, or nil when there is none (or netlink cannot be asked).
    public static func route(to address: IPAddress) -> RouteLookup? {
        guard let socket = try? NetlinkSocket(bus: NETLINK_ROUTE) else { return nil }
        let buffer = NetlinkMessageBuffer(capacity: 4096)
        let h = mnl_nlmsg_put_header(buffer.base)!
        h.pointee.nlmsg_type = UInt16(RTM_GETROUTE)
        h.pointee.nlmsg_flags = UInt16(NLM_F_REQUEST | NLM_F_ACK)
        h.pointee.nlmsg_seq = socket.nextSequence()
        let message = mnl_nlmsg_put_extra_header(h, MemoryLayout<rtmsg>.size)!.assumingMemoryBound(to: rtmsg.self)
        let bytes: [UInt8]
        switch address {
        case .v4(let a): bytes = a.octets
        case .v6(let a): bytes = a.bytes
        }
        message.pointee.rtm_family = UInt8(address.isIPv6 ? AF_INET6 : AF_INET)
        message.pointee.rtm_dst_len = UInt8(bytes.count * 8)
        bytes.withUnsafeBytes { mnl_attr_put(h, UInt16(RTA_DST.rawValue), $0.count, $0.baseAddress) }
        buffer.commit(h, expectsAck: true)

        var interfaceIndex: UInt32?
        var gateway: IPAddress?
        do {
            try socket.request(buffer.bytes, acks: 1) { reply in
                guard reply.pointee.nlmsg_type == UInt16(RTM_NEWROUTE) else { return }
                let header = UnsafeMutablePointer(mutating: reply)
                var attribute = mnl_nlmsg_get_payload_offset(header, MemoryLayout<rtmsg>.size)!.assumingMemoryBound(to: nlattr.self)
                let end = mnl_nlmsg_get_payload_tail(header)!
                while mnl_attr_ok(attribute, Int32(UnsafeRawPointer(end) - UnsafeRawPointer(attribute))) {
                    let type = mnl_attr_get_type(attribute)
                    let length = Int(mnl_attr_get_payload_len(attribute))
                    let payload = UnsafeRawPointer(mnl_attr_get_payload(attribute)!)
                    if type == UInt16(RTA_OIF.rawValue) && length == 4 {
                        interfaceIndex = payload.loadUnaligned(as: UInt32.self)
                    } else if type == UInt16(RTA_GATEWAY.rawValue) && length == 4 {
                        gateway = .v4(IPv4Address(rawValue: payload.loadUnaligned(as: UInt32.self)))
                    } else if type == UInt16(RTA_GATEWAY.rawValue) && length == 16 {
                        gateway = .v6(IPv6Address(high: payload.loadUnaligned(as: UInt64.self), low: payload.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
                    }
                    attribute = mnl_attr_next(attribute)!
                }
            }
        } catch {
            return nil
        }
        guard let interfaceIndex else { return nil }
        var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        guard if_indextoname(interfaceIndex, &name) != nil else { return nil }
        return RouteLookup(interface: String(cString: name), gateway: gateway)
    }
}
