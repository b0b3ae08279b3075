#if canImport(Glibc)
import Glibc
#endif
import CNetfilter
import RelayCore

/// The bypass part of the table (InterceptionPlan+Bypass.swift) as nf_tables messages: named
/// counters, the two interval sets of blocked addresses, the rules, and the batch that swaps a
/// set's contents whole.
extension NftablesMessages {
    static let forwardChainName = "forward"
    /// nft's datatype numbers for the sets' keys (`ipv4_addr`, `ipv6_addr`).
    static let ipv4Type: UInt32 = 7
    static let ipv6Type: UInt32 = 8
    static let setIDv4: UInt32 = 0x5301
    static let setIDv6: UInt32 = 0x5302
    /// Elements per NEWSETELEM message (a message stays well under 64 KiB).
    static let elementsPerMessage = 512

    /// `add counter inet T C` for each counter, and `add set inet T blocked_v4 { type ipv4_addr;
    /// flags interval; }` (and v6) when addresses are blocked.
    static func appendBypassObjects(for plan: InterceptionPlan, to buffer: NetlinkMessageBuffer, sequence: () -> UInt32) {
        let family = UInt16(NFPROTO_INET)
        for name in plan.bypassCounters {
            let object = nftnl_obj_alloc()!
            defer { nftnl_obj_free(object) }
            nftnl_obj_set_str(object, UInt16(NFTNL_OBJ_TABLE), plan.tableName)
            nftnl_obj_set_str(object, UInt16(NFTNL_OBJ_NAME), name)
            nftnl_obj_set_u32(object, UInt16(NFTNL_OBJ_TYPE), UInt32(NFT_OBJECT_COUNTER))
            nftnl_obj_set_u32(object, UInt16(NFTNL_OBJ_FAMILY), UInt32(NFPROTO_INET))
            let h = nftnl_nlmsg_build_hdr(buffer.tail, UInt16(NFT_MSG_NEWOBJ.rawValue), family, UInt16(NLM_F_CREATE | NLM_F_ACK), sequence())!
            nftnl_obj_nlmsg_build_payload(h, object)
            buffer.commit(h, expectsAck: true)
        }
        guard plan.bypass?.blockAddresses == true else { return }
        for (name, type, length, id) in [(InterceptionPlan.blockedSetV4, ipv4Type, UInt32(4), setIDv4),
                                         (InterceptionPlan.blockedSetV6, ipv6Type, UInt32(16), setIDv6)] {
            let set = nftnl_set_alloc()!
            defer { nftnl_set_free(set) }
            nftnl_set_set_str(set, UInt16(NFTNL_SET_TABLE.rawValue), plan.tableName)
            nftnl_set_set_str(set, UInt16(NFTNL_SET_NAME.rawValue), name)
            nftnl_set_set_u32(set, UInt16(NFTNL_SET_FAMILY.rawValue), UInt32(NFPROTO_INET))
            nftnl_set_set_u32(set, UInt16(NFTNL_SET_KEY_TYPE.rawValue), type)
            nftnl_set_set_u32(set, UInt16(NFTNL_SET_KEY_LEN.rawValue), length)
            nftnl_set_set_u32(set, UInt16(NFTNL_SET_FLAGS.rawValue), NFT_SET_INTERVAL.rawValue)
            nftnl_set_set_u32(set, UInt16(NFTNL_SET_ID.rawValue), id)
            let h = nftnl_nlmsg_build_hdr(buffer.tail, UInt16(NFT_MSG_NEWSET.rawValue), family, UInt16(NLM_F_CREATE | NLM_F_ACK), sequence())!
            nftnl_set_nlmsg_build_payload(h, set)
            buffer.commit(h, expectsAck: true)
        }
    }

    /// One bypass rule (see `InterceptionPlan.BypassRule`).
    static func makeBypassRule(_ rule: InterceptionPlan.BypassRule, table: String) -> OpaquePointer {
        let r = newRule(table: table, chain: rule.chain == .forward ? forwardChainName : chainName)
        var name = [UInt8](repeating: 0, count: Int(IFNAMSIZ))
        for (i, byte) in rule.interface.utf8.prefix(Int(IFNAMSIZ) - 1).enumerated() { name[i] = byte }
        add(r, meta(key: NFT_META_IIFNAME.rawValue, register: 1))
        add(r, compare(register: 1, name))
        if rule.destination != .any {
            add(r, meta(key: NFT_META_NFPROTO.rawValue, register: 1))
            add(r, compare(register: 1, [UInt8(rule.destination == .blockedV6 ? NFPROTO_IPV6 : NFPROTO_IPV4)]))
        }
        matchDestination(r, rule.transport, port: rule.port)
        if rule.destination != .any {
            let v6 = rule.destination == .blockedV6
            let payload = nftnl_expr_alloc("payload")!
            nftnl_expr_set_u32(payload, UInt16(NFTNL_EXPR_PAYLOAD_BASE), NFT_PAYLOAD_NETWORK_HEADER.rawValue)
            nftnl_expr_set_u32(payload, UInt16(NFTNL_EXPR_PAYLOAD_OFFSET), v6 ? 24 : 16)
            nftnl_expr_set_u32(payload, UInt16(NFTNL_EXPR_PAYLOAD_LEN), v6 ? 16 : 4)
            nftnl_expr_set_u32(payload, UInt16(NFTNL_EXPR_PAYLOAD_DREG), 1)
            add(r, payload)
            let lookup = nftnl_expr_alloc("lookup")!
            nftnl_expr_set_u32(lookup, UInt16(NFTNL_EXPR_LOOKUP_SREG), 1)
            nftnl_expr_set_str(lookup, UInt16(NFTNL_EXPR_LOOKUP_SET), v6 ? InterceptionPlan.blockedSetV6 : InterceptionPlan.blockedSetV4)
            nftnl_expr_set_u32(lookup, UInt16(NFTNL_EXPR_LOOKUP_SET_ID), v6 ? setIDv6 : setIDv4)
            add(r, lookup)
        }
        if let name = rule.counter {
            let counter = nftnl_expr_alloc("objref")!
            nftnl_expr_set_u32(counter, UInt16(NFTNL_EXPR_OBJREF_IMM_TYPE), UInt32(NFT_OBJECT_COUNTER))
            nftnl_expr_set_str(counter, UInt16(NFTNL_EXPR_OBJREF_IMM_NAME), name)
            add(r, counter)
        }
        switch rule.verdict {
        case .drop:
            add(r, verdict(NF_DROP))
        case .skipCapture:
            add(r, verdict(NF_ACCEPT))
        case .reset, .unreachable:
            let reject = nftnl_expr_alloc("reject")!
            if rule.verdict == .reset {
                nftnl_expr_set_u32(reject, UInt16(NFTNL_EXPR_REJECT_TYPE), UInt32(NFT_REJECT_TCP_RST.rawValue))
                nftnl_expr_set_u8(reject, UInt16(NFTNL_EXPR_REJECT_CODE), 0)
            } else {
                // inet: the family-neutral code, ICMP port unreachable or its ICMPv6 twin.
                nftnl_expr_set_u32(reject, UInt16(NFTNL_EXPR_REJECT_TYPE), UInt32(NFT_REJECT_ICMPX_UNREACH.rawValue))
                nftnl_expr_set_u8(reject, UInt16(NFTNL_EXPR_REJECT_CODE), UInt8(NFT_REJECT_ICMPX_PORT_UNREACH.rawValue))
            }
            add(r, reject)
        }
        return r
    }

    /// One batch that empties both sets and fills them with `v4` and `v6`: the kernel applies it
    /// whole or not at all, so no packet sees a half-loaded set.
    static func appendReplaceBlockedBatch(table: String, v4: [ClosedRange<UInt32>], v6: [ClosedRange<UInt128>],
                                          to buffer: NetlinkMessageBuffer, sequence: () -> UInt32) {
        let family = UInt16(NFPROTO_INET)
        var h = nftnl_batch_begin(buffer.tail, sequence())!
        buffer.commit(h, expectsAck: false)
        func keyBytes4(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }
        func keyBytes6(_ value: UInt128) -> [UInt8] {
            withUnsafeBytes(of: UInt64(truncatingIfNeeded: value >> 64).bigEndian) { Array($0) }
                + withUnsafeBytes(of: UInt64(truncatingIfNeeded: value).bigEndian) { Array($0) }
        }
        // Interval sets take each range as its first key and, flagged as an end, the key after it
        // (none when the range runs to the end of the address space).
        var elements4: [([UInt8], Bool)] = []
        for range in v4 {
            elements4.append((keyBytes4(range.lowerBound), false))
            if range.upperBound != .max { elements4.append((keyBytes4(range.upperBound + 1), true)) }
        }
        var elements6: [([UInt8], Bool)] = []
        for range in v6 {
            elements6.append((keyBytes6(range.lowerBound), false))
            if range.upperBound != .max { elements6.append((keyBytes6(range.upperBound + 1), true)) }
        }
        for (name, elements) in [(InterceptionPlan.blockedSetV4, elements4), (InterceptionPlan.blockedSetV6, elements6)] {
            func newSet() -> OpaquePointer {
                let set = nftnl_set_alloc()!
                nftnl_set_set_str(set, UInt16(NFTNL_SET_TABLE.rawValue), table)
                nftnl_set_set_str(set, UInt16(NFTNL_SET_NAME.rawValue), name)
                nftnl_set_set_u32(set, UInt16(NFTNL_SET_FAMILY.rawValue), UInt32(NFPROTO_INET))
                return set
            }
            // A DELSETELEM without elements flushes the set.
            let flush = newSet()
            h = nftnl_nlmsg_build_hdr(buffer.tail, UInt16(NFT_MSG_DELSETELEM.rawValue), family, UInt16(NLM_F_ACK), sequence())!
            nftnl_set_elems_nlmsg_build_payload(h, flush)
            nftnl_set_free(flush)
            buffer.commit(h, expectsAck: true)
            var start = 0
            while start < elements.count {
                let set = newSet()
                for (key, end) in elements[start..<min(elements.count, start + elementsPerMessage)] {
                    let element = nftnl_set_elem_alloc()!
                    key.withUnsafeBytes { _ = nftnl_set_elem_set(element, UInt16(NFTNL_SET_ELEM_KEY), $0.baseAddress, UInt32($0.count)) }
                    if end { nftnl_set_elem_set_u32(element, UInt16(NFTNL_SET_ELEM_FLAGS), UInt32(NFT_SET_ELEM_INTERVAL_END.rawValue)) }
                    nftnl_set_elem_add(set, element)
                }
                h = nftnl_nlmsg_build_hdr(buffer.tail, UInt16(NFT_MSG_NEWSETELEM.rawValue), family, UInt16(NLM_F_CREATE | NLM_F_ACK), sequence())!
                nftnl_set_elems_nlmsg_build_payload(h, set)
                nftnl_set_free(set)
                buffer.commit(h, expectsAck: true)
                start += elementsPerMessage
            }
        }
        h = nftnl_batch_end(buffer.tail, sequence())!
        buffer.commit(h, expectsAck: false)
    }
}

extension NftablesTable {
    /// Replaces the blocked addresses with these prefixes, in one batch (SIGHUP, a file changed).
    public func replaceBlockedAddresses(_ prefixes: [IPPrefix]) throws {
        let v4 = AddressList.rangesV4(prefixes)
        let v6 = AddressList.rangesV6(prefixes)
        let buffer = NetlinkMessageBuffer(capacity: 1 << 16 + (v4.count + v6.count) * 2 * 96)
        NftablesMessages.appendReplaceBlockedBatch(table: name, v4: v4, v6: v6, to: buffer, sequence: { self.nextSequence() })
        do {
            try request(buffer)
        } catch {
            throw RelayError(.netlink, "loading the blocked addresses into nft table inet \(name) failed: \(error)")
        }
    }

    /// The packet counts of the table's named counters (read over a socket of its own, so that
    /// any thread may ask); a counter that cannot be read is left out.
    public static func counters(table: String, names: [String]) -> [String: UInt64] {
        guard !names.isEmpty, let socket = try? NetlinkSocket(bus: NETLINK_NETFILTER) else { return [:] }
        var out: [String: UInt64] = [:]
        for name in names {
            let buffer = NetlinkMessageBuffer(capacity: 4096)
            let object = nftnl_obj_alloc()!
            nftnl_obj_set_str(object, UInt16(NFTNL_OBJ_TABLE), table)
            nftnl_obj_set_str(object, UInt16(NFTNL_OBJ_NAME), name)
            nftnl_obj_set_u32(object, UInt16(NFTNL_OBJ_TYPE), UInt32(NFT_OBJECT_COUNTER))
            let h = nftnl_nlmsg_build_hdr(buffer.tail, UInt16(NFT_MSG_GETOBJ.rawValue), UInt16(NFPROTO_INET), UInt16(NLM_F_ACK), socket.nextSequence())!
            nftnl_obj_nlmsg_build_payload(h, object)
            nftnl_obj_free(object)
            buffer.commit(h, expectsAck: true)
            try? socket.request(buffer.bytes, acks: 1) { reply in
                let parsed = nftnl_obj_alloc()!
                defer { nftnl_obj_free(parsed) }
                if nftnl_obj_nlmsg_parse(reply, parsed) >= 0 {
                    out[name] = nftnl_obj_get_u64(parsed, UInt16(NFTNL_OBJ_CTR_PKTS))
                }
            }
        }
        return out
    }
}
