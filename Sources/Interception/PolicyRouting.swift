#if canImport(Glibc)
import Glibc
#endif
import CNetfilter
import RelayCore

/// The policy routes that deliver marked packets to the local stack, where TPROXY's socket
/// assignment takes them: `ip rule add fwmark MARK lookup TABLE priority P` and
/// `ip route add local default dev lo table TABLE`, for each family, over rtnetlink.
///
/// Unlike the nft table these have no owner, so the relay removes them itself (`remove()`),
/// and adding is idempotent: an equal rule left by a crashed run is deleted first, and the route
/// is added with NLM_F_REPLACE.
public final class PolicyRouting {
    private let socket: NetlinkSocket
    private let mark: UInt32
    private let table: UInt32
    private let priority: UInt32
    private let families: [UInt8]

    /// Installs the rules and routes for IPv4 and, when `ipv6`, IPv6.
    public init(mark: UInt32, table: UInt32, priority: UInt32, ipv6: Bool) throws {
        socket = try NetlinkSocket(bus: NETLINK_ROUTE)
        self.mark = mark
        self.table = table
        self.priority = priority
        families = ipv6 ? [UInt8(AF_INET), UInt8(AF_INET6)] : [UInt8(AF_INET)]
        guard let loopback = Optional(if_nametoindex("lo")), loopback != 0 else {
            throw RelayError(.noSuchInterface, "the loopback interface lo does not exist in this namespace")
        }
        do {
            for family in families {
                // Remove equal rules a crashed run left behind (EXCL would refuse, plain add would stack).
                while (try? send(rule: RTM_DELRULE, family: family, flags: 0)) != nil {}
                try send(rule: RTM_NEWRULE, family: family, flags: NLM_F_CREATE | NLM_F_EXCL)
                try send(route: RTM_NEWROUTE, family: family, loopback: loopback, flags: NLM_F_CREATE | NLM_F_REPLACE)
            }
        } catch {
            remove()
            let family = "policy routing (fwmark \(hex(mark)) lookup \(table), priority \(priority))"
            if error == .permissionDenied || error == .accessDenied {
                throw RelayError(.permissionDenied, "installing \(family) needs CAP_NET_ADMIN (\(error))")
            }
            throw RelayError(.netlink, "installing \(family) failed: \(error)")
        }
    }

    deinit { remove() }

    /// Deletes what `init` added; safe to call twice, and after a partial install.
    public func remove() {
        let loopback = if_nametoindex("lo")
        for family in families {
            try? send(rule: RTM_DELRULE, family: family, flags: 0)
            try? send(route: RTM_DELROUTE, family: family, loopback: loopback, flags: 0)
        }
    }

    private func send(rule type: Int, family: UInt8, flags: Int32) throws(Errno) {
        try send(type, flags: flags, header: fib_rule_hdr.self) { h, header in
            header.pointee.family = family
            header.pointee.action = UInt8(FR_ACT_TO_TBL)
            header.pointee.table = table < 256 ? UInt8(table) : UInt8(RT_TABLE_UNSPEC.rawValue)
            mnl_attr_put_u32(h, UInt16(FRA_TABLE), table)
            mnl_attr_put_u32(h, UInt16(FRA_FWMARK), mark)
            mnl_attr_put_u32(h, UInt16(FRA_PRIORITY), priority)
        }
    }

    private func send(route type: Int, family: UInt8, loopback: UInt32, flags: Int32) throws(Errno) {
        try send(type, flags: flags, header: rtmsg.self) { h, message in
            message.pointee.rtm_family = family
            message.pointee.rtm_dst_len = 0
            message.pointee.rtm_table = table < 256 ? UInt8(table) : UInt8(RT_TABLE_UNSPEC.rawValue)
            message.pointee.rtm_protocol = UInt8(RTPROT_BOOT)
            message.pointee.rtm_scope = UInt8(RT_SCOPE_HOST.rawValue)
            message.pointee.rtm_type = UInt8(RTN_LOCAL)
            mnl_attr_put_u32(h, UInt16(RTA_TABLE.rawValue), table)
            mnl_attr_put_u32(h, UInt16(RTA_OIF.rawValue), loopback)
        }
    }

    /// One rtnetlink request: the netlink header, a family header of type `Header` that `fill`
    /// completes (with its attributes), and a wait for the ack.
    private func send<Header>(_ type: Int, flags: Int32, header: Header.Type,
                              fill: (UnsafeMutablePointer<nlmsghdr>, UnsafeMutablePointer<Header>) -> Void) throws(Errno) {
        let buffer = NetlinkMessageBuffer(capacity: 4096)
        let h = mnl_nlmsg_put_header(buffer.base)!
        h.pointee.nlmsg_type = UInt16(type)
        h.pointee.nlmsg_flags = UInt16(NLM_F_REQUEST | NLM_F_ACK | flags)
        h.pointee.nlmsg_seq = socket.nextSequence()
        fill(h, mnl_nlmsg_put_extra_header(h, MemoryLayout<Header>.size)!.assumingMemoryBound(to: Header.self))
        buffer.commit(h, expectsAck: true)
        try socket.request(buffer.bytes, acks: 1)
    }
}

func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16) }
