#if canImport(Glibc)
import Glibc
#endif
import CNetfilter
import RelayCore

/// The policy routes that deliver marked packets to the local stack, where TPROXY's socket
/// assignment takes them: `ip rule add fwmark MARK iif IFACE lookup TABLE priority P` for each
/// captured interface and `ip route add local default dev lo table TABLE`, for each family, over
/// rtnetlink.
///
/// Why `iif`: with `net.ipv4.conf.all.src_valid_mark=1` (wg-quick sets it) the kernel's
/// reverse-path check looks the packet's source up *with its mark* and with iif = lo. A rule
/// that matched every marked lookup would send that check to TABLE too, where every address is
/// local, and the kernel would drop each intercepted packet as a martian even with rp_filter
/// off (issue 13, finding 10). Matching the interfaces the packets arrive on leaves the check
/// to the main table.
///
/// The host's own traffic (`intercept.local`) carries a mark of its own, set by the table's output
/// chain: `ip rule add fwmark LOCAL_MARK lookup TABLE` without `iif` reroutes it to `lo` (a
/// locally generated packet's lookup has iif = lo, as the reverse-path check has, so sharing
/// `MARK` with an `iif lo` rule would bring back the martian drops above; a mark that LAN packets
/// never carry cannot).
///
/// Answers to queries that left from clients' addresses (`upstream.client_identity: source`)
/// carry `IDENTITY_MARK` (the table's `socket transparent` rule) and arrive on any interface, so
/// their rule has no `iif` either: `fwmark IDENTITY_MARK lookup TABLE`. Before it, `fwmark
/// IDENTITY_MARK iif lo lookup main` sends the reverse-path check of those packets (iif = lo,
/// their mark with `src_valid_mark=1`) to the main table, where their source, the upstream, is a
/// remote address; without it the check finds every address local in TABLE and drops them as
/// martians (measured in the lab: no answer with `src_valid_mark=1`, answers with the rule).
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
    private let interfaces: [String]
    private let localMark: UInt32?
    private let identityMark: UInt32?
    /// The main routing table (RT_TABLE_MAIN).
    private static let mainTable: UInt32 = 254

    /// Installs the rules (one per interface in `interfaces`, one for `localMark` when the host's
    /// own traffic is captured, two for `identityMark` when queries leave from clients'
    /// addresses) and routes for IPv4 and, when `ipv6`, IPv6.
    public init(mark: UInt32, table: UInt32, priority: UInt32, interfaces: [String], ipv6: Bool, localMark: UInt32? = nil,
                identityMark: UInt32? = nil) throws {
        socket = try NetlinkSocket(bus: NETLINK_ROUTE)
        self.mark = mark
        self.table = table
        self.priority = priority
        self.interfaces = interfaces
        self.localMark = localMark
        self.identityMark = identityMark
        families = ipv6 ? [UInt8(AF_INET), UInt8(AF_INET6)] : [UInt8(AF_INET)]
        guard let loopback = Optional(if_nametoindex("lo")), loopback != 0 else {
            throw RelayError(.noSuchInterface, "the loopback interface lo does not exist in this namespace")
        }
        do {
            for family in families {
                // Remove equal rules a crashed run left behind, for any interface (a request
                // without iif matches them all; EXCL would refuse, plain add would stack).
                while (try? send(rule: RTM_DELRULE, family: family, interface: nil, flags: 0)) != nil {}
                if let localMark {
                    while (try? send(rule: RTM_DELRULE, family: family, interface: nil, mark: localMark, flags: 0)) != nil {}
                }
                if let identityMark {
                    while (try? send(rule: RTM_DELRULE, family: family, interface: nil, mark: identityMark, flags: 0)) != nil {}
                    while (try? send(rule: RTM_DELRULE, family: family, interface: nil, mark: identityMark, table: Self.mainTable,
                                     flags: 0)) != nil {}
                }
                for interface in interfaces {
                    try send(rule: RTM_NEWRULE, family: family, interface: interface, flags: NLM_F_CREATE | NLM_F_EXCL)
                }
                if let localMark {
                    try send(rule: RTM_NEWRULE, family: family, interface: nil, mark: localMark, flags: NLM_F_CREATE | NLM_F_EXCL)
                }
                if let identityMark {
                    // The guard first: rules of equal priority are consulted in the order added.
                    try send(rule: RTM_NEWRULE, family: family, interface: "lo", mark: identityMark, table: Self.mainTable,
                             flags: NLM_F_CREATE | NLM_F_EXCL)
                    try send(rule: RTM_NEWRULE, family: family, interface: nil, mark: identityMark, flags: NLM_F_CREATE | NLM_F_EXCL)
                }
                try send(route: RTM_NEWROUTE, family: family, loopback: loopback, flags: NLM_F_CREATE | NLM_F_REPLACE)
            }
        } catch {
            remove()
            let family = "policy routing (fwmark \(hex(mark)) iif \(interfaces.joined(separator: ",")) lookup \(table), priority \(priority))"
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
            for interface in interfaces { try? send(rule: RTM_DELRULE, family: family, interface: interface, flags: 0) }
            if let localMark { try? send(rule: RTM_DELRULE, family: family, interface: nil, mark: localMark, flags: 0) }
            if let identityMark {
                try? send(rule: RTM_DELRULE, family: family, interface: "lo", mark: identityMark, table: Self.mainTable, flags: 0)
                try? send(rule: RTM_DELRULE, family: family, interface: nil, mark: identityMark, flags: 0)
            }
            try? send(route: RTM_DELROUTE, family: family, loopback: loopback, flags: 0)
        }
    }

    private func send(rule type: Int, family: UInt8, interface: String?, mark: UInt32? = nil, table: UInt32? = nil, flags: Int32) throws(Errno) {
        let mark = mark ?? self.mark
        let table = table ?? self.table
        try send(type, flags: flags, header: fib_rule_hdr.self) { h, header in
            if let interface { mnl_attr_put_strz(h, UInt16(FRA_IIFNAME), interface) }
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
