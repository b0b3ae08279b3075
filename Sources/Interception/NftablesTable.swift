#if canImport(Glibc)
import Glibc
#endif
import CNetfilter
import RelayCore

/// The relay's nft table: `table inet <name>` with the owner flag, one prerouting chain at mangle
/// priority, and the TPROXY rules of an `InterceptionPlan`.
///
/// The kernel deletes an owned table when the netlink socket that created it closes — on a clean
/// exit, SIGTERM or `kill -9` alike — so interception never outlives the relay (fail-open).
/// Keep this object alive exactly as long as interception should last.
public final class NftablesTable {
    private let socket: NetlinkSocket
    public let name: String

    /// Creates the empty table, owned by this process. This is also the instance lock: a second
    /// relay fails here, before it has touched listeners or routes. `installRules()` fills it.
    public init(name: String) throws {
        self.name = name
        socket = try NetlinkSocket(bus: NETLINK_NETFILTER)
        let buffer = NetlinkMessageBuffer()
        NftablesMessages.appendTableBatch(named: name, to: buffer, sequence: { self.socket.nextSequence() })
        do {
            try socket.request(buffer.bytes, acks: buffer.acksExpected)
        } catch {
            switch error.rawValue {
            case EEXIST:
                throw RelayError(.interceptionBusy,
                    "nft table inet \(name) already exists and belongs to another process (is another tproxy-relay running?)")
            case EPERM where SystemInfoProbe.hasNetAdmin:
                // An owned table answers EPERM to everyone but its owner.
                throw RelayError(.interceptionBusy,
                    "nft table inet \(name) already exists and belongs to another process (is another tproxy-relay running?)")
            case EPERM, EACCES:
                throw RelayError(.permissionDenied, "installing nft table inet \(name) needs CAP_NET_ADMIN (\(error))")
            default:
                throw RelayError(.netlink, "installing nft table inet \(name) failed: \(error)")
            }
        }
    }

    /// Adds the prerouting chain and the TPROXY rules of `plan`: from now on traffic is captured.
    public func installRules(_ plan: InterceptionPlan) throws {
        precondition(plan.tableName == name, "the plan is for another table")
        let buffer = NetlinkMessageBuffer()
        NftablesMessages.appendRulesBatch(for: plan, to: buffer, sequence: { self.socket.nextSequence() })
        do {
            try socket.request(buffer.bytes, acks: buffer.acksExpected)
        } catch {
            throw RelayError(.netlink, "installing the rules of nft table inet \(name) failed: \(error)")
        }
    }

    /// The table's owner: the netlink port id of the socket that holds it.
    public var ownerPortID: UInt32 { socket.portID }

    /// For changes after installation (NftablesMessages+Bypass): only the owning socket may.
    func nextSequence() -> UInt32 { socket.nextSequence() }

    func request(_ buffer: NetlinkMessageBuffer) throws(Errno) {
        try socket.request(buffer.bytes, acks: buffer.acksExpected)
    }
}

/// Capability check without importing LinuxNet (Interception owns only netlink).
enum SystemInfoProbe {
    static var hasNetAdmin: Bool {
        guard let f = fopen("/proc/self/status", "r") else { return geteuid() == 0 }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), f) != nil {
            let text = String(cString: line)
            if text.hasPrefix("CapEff:") {
                let hex = text.dropFirst(7).filter { !$0.isWhitespace }
                return (UInt64(hex, radix: 16) ?? 0) & (1 << 12) != 0
            }
        }
        return false
    }
}

/// Builds the nf_tables netlink messages for a plan. Separate from the socket so that tests can
/// render every rule as text (`nft --debug=netlink` style) without touching the kernel.
public enum NftablesMessages {
    static let chainName = "prerouting"
    /// NF_IP_PRI_MANGLE: after conntrack, where TPROXY rules conventionally live.
    static let manglePriority: Int32 = -150

    /// `add table inet NAME { flags owner; }`, alone in a batch.
    static func appendTableBatch(named name: String, to buffer: NetlinkMessageBuffer, sequence: () -> UInt32) {
        var h = nftnl_batch_begin(buffer.tail, sequence())!
        buffer.commit(h, expectsAck: false)
        let table = nftnl_table_alloc()!
        defer { nftnl_table_free(table) }
        nftnl_table_set_str(table, UInt16(NFTNL_TABLE_NAME.rawValue), name)
        nftnl_table_set_u32(table, UInt16(NFTNL_TABLE_FAMILY.rawValue), UInt32(NFPROTO_INET))
        nftnl_table_set_u32(table, UInt16(NFTNL_TABLE_FLAGS.rawValue), UInt32(NFT_TABLE_F_OWNER.rawValue))
        // EXCL: never adopt a table someone else made (a persisting one would fail closed).
        h = nftnl_nlmsg_build_hdr(buffer.tail, UInt16(NFT_MSG_NEWTABLE.rawValue), UInt16(NFPROTO_INET),
                                  UInt16(NLM_F_CREATE | NLM_F_ACK | NLM_F_EXCL), sequence())!
        nftnl_table_nlmsg_build_payload(h, table)
        buffer.commit(h, expectsAck: true)
        h = nftnl_batch_end(buffer.tail, sequence())!
        buffer.commit(h, expectsAck: false)
    }

    /// The prerouting chain and every rule of the plan, in one batch (all or nothing).
    static func appendRulesBatch(for plan: InterceptionPlan, to buffer: NetlinkMessageBuffer, sequence: () -> UInt32) {
        let family = UInt16(NFPROTO_INET)
        let create = UInt16(NLM_F_CREATE | NLM_F_ACK)
        var h = nftnl_batch_begin(buffer.tail, sequence())!
        buffer.commit(h, expectsAck: false)

        func appendChain(_ chain: OpaquePointer) {
            defer { nftnl_chain_free(chain) }
            let h = nftnl_nlmsg_build_hdr(buffer.tail, UInt16(NFT_MSG_NEWCHAIN.rawValue), family, create, sequence())!
            nftnl_chain_nlmsg_build_payload(h, chain)
            buffer.commit(h, expectsAck: true)
        }
        func appendRule(_ rule: OpaquePointer) {
            defer { nftnl_rule_free(rule) }
            let h = nftnl_nlmsg_build_hdr(buffer.tail, UInt16(NFT_MSG_NEWRULE.rawValue), family, create | UInt16(NLM_F_APPEND), sequence())!
            nftnl_rule_nlmsg_build_payload(h, rule)
            buffer.commit(h, expectsAck: true)
        }
        // The bypass's counters and sets first: its rules name them.
        appendBypassObjects(for: plan, to: buffer, sequence: sequence)
        appendChain(makeChain(table: plan.tableName, name: chainName, type: "filter", hook: NF_INET_PRE_ROUTING.rawValue))
        // Its drops come before the capture (UDP 443 to a blocked address must not reach the QUIC relay).
        for rule in plan.bypassRules where rule.chain == .prerouting { appendRule(makeBypassRule(rule, table: plan.tableName)) }
        for rule in plan.rules { appendRule(makeRule(rule, table: plan.tableName)) }
        for rule in plan.identityRules { appendRule(makeIdentityRule(rule, table: plan.tableName)) }
        let forward = plan.bypassRules.filter { $0.chain == .forward }
        if !forward.isEmpty {
            appendChain(makeChain(table: plan.tableName, name: forwardChainName, type: "filter", hook: NF_INET_FORWARD.rawValue, priority: 0))
            for rule in forward { appendRule(makeBypassRule(rule, table: plan.tableName)) }
        }
        if plan.local != nil {
            // `type route`: only a route chain re-routes a locally generated packet whose mark
            // changed (docs/LINUX-NOTES.md).
            appendChain(makeChain(table: plan.tableName, name: outputChainName, type: "route", hook: NF_INET_LOCAL_OUT.rawValue))
            for rule in plan.outputRules { appendRule(makeOutputRule(rule, table: plan.tableName)) }
        }

        h = nftnl_batch_end(buffer.tail, sequence())!
        buffer.commit(h, expectsAck: false)
    }

    /// A base chain of the table at mangle priority, policy accept.
    static func makeChain(table: String, name: String, type: String, hook: UInt32, priority: Int32 = manglePriority) -> OpaquePointer {
        let chain = nftnl_chain_alloc()!
        nftnl_chain_set_str(chain, UInt16(NFTNL_CHAIN_TABLE.rawValue), table)
        nftnl_chain_set_str(chain, UInt16(NFTNL_CHAIN_NAME.rawValue), name)
        nftnl_chain_set_u32(chain, UInt16(NFTNL_CHAIN_FAMILY.rawValue), UInt32(NFPROTO_INET))
        nftnl_chain_set_str(chain, UInt16(NFTNL_CHAIN_TYPE.rawValue), type)
        nftnl_chain_set_u32(chain, UInt16(NFTNL_CHAIN_HOOKNUM.rawValue), hook)
        nftnl_chain_set_s32(chain, UInt16(NFTNL_CHAIN_PRIO.rawValue), priority)
        nftnl_chain_set_u32(chain, UInt16(NFTNL_CHAIN_POLICY.rawValue), UInt32(NF_ACCEPT))
        return chain
    }

    /// An empty rule of `chain` in `table`.
    static func newRule(table: String, chain: String) -> OpaquePointer {
        let r = nftnl_rule_alloc()!
        nftnl_rule_set_str(r, UInt16(NFTNL_RULE_TABLE.rawValue), table)
        nftnl_rule_set_str(r, UInt16(NFTNL_RULE_CHAIN.rawValue), chain)
        nftnl_rule_set_u32(r, UInt16(NFTNL_RULE_FAMILY.rawValue), UInt32(NFPROTO_INET))
        return r
    }

    /// `iifname I meta nfproto F meta l4proto P th dport D tproxy to A:L meta mark set M`.
    /// tproxy comes before the mark: with no listener, tproxy stops the rule (NFT_BREAK) and the
    /// packet stays unmarked, so it is routed to its real server (fail-open, docs/LINUX-NOTES.md).
    static func makeRule(_ rule: InterceptionPlan.Rule, table: String) -> OpaquePointer {
        let r = newRule(table: table, chain: chainName)

        var name = [UInt8](repeating: 0, count: Int(IFNAMSIZ))
        for (i, byte) in rule.interface.utf8.prefix(Int(IFNAMSIZ) - 1).enumerated() { name[i] = byte }
        add(r, meta(key: NFT_META_IIFNAME.rawValue, register: 1))
        add(r, compare(register: 1, name))
        if let required = rule.requiredMark {
            add(r, meta(key: NFT_META_MARK.rawValue, register: 1))
            add(r, compare(register: 1, withUnsafeBytes(of: required) { Array($0) }))
        }

        let nfproto: UInt8 = rule.target.address.isIPv6 ? UInt8(NFPROTO_IPV6) : UInt8(NFPROTO_IPV4)
        add(r, meta(key: NFT_META_NFPROTO.rawValue, register: 1))
        add(r, compare(register: 1, [nfproto]))
        matchDestination(r, rule.transport, port: rule.port)

        let addressBytes: [UInt8]
        switch rule.target.address {
        case .v4(let a): addressBytes = a.octets
        case .v6(let a): addressBytes = a.bytes
        }
        add(r, immediate(register: 1, addressBytes))
        add(r, immediate(register: 2, [UInt8(rule.target.port >> 8), UInt8(rule.target.port & 0xff)]))
        let tproxy = nftnl_expr_alloc("tproxy")!
        nftnl_expr_set_u32(tproxy, UInt16(NFTNL_EXPR_TPROXY_FAMILY), UInt32(nfproto))
        nftnl_expr_set_u32(tproxy, UInt16(NFTNL_EXPR_TPROXY_REG_ADDR), 1)
        nftnl_expr_set_u32(tproxy, UInt16(NFTNL_EXPR_TPROXY_REG_PORT), 2)
        add(r, tproxy)

        setMark(r, rule.mark)
        return r
    }

    /// `meta l4proto P th sport S th dport != C… socket transparent 1 meta mark set M`.
    static func makeIdentityRule(_ rule: InterceptionPlan.IdentityRule, table: String) -> OpaquePointer {
        let r = newRule(table: table, chain: chainName)
        add(r, meta(key: NFT_META_L4PROTO.rawValue, register: 1))
        add(r, compare(register: 1, [rule.transport.rawValue]))
        add(r, transportPort(offset: 0))
        add(r, compare(register: 1, [UInt8(rule.serverPort >> 8), UInt8(rule.serverPort & 0xff)]))
        for port in rule.excludedPorts {
            add(r, transportPort(offset: 2))
            add(r, compare(register: 1, [UInt8(port >> 8), UInt8(port & 0xff)], op: NFT_CMP_NEQ.rawValue))
        }
        let socket = nftnl_expr_alloc("socket")!
        nftnl_expr_set_u32(socket, UInt16(NFTNL_EXPR_SOCKET_KEY), NFT_SOCKET_TRANSPARENT.rawValue)
        nftnl_expr_set_u32(socket, UInt16(NFTNL_EXPR_SOCKET_DREG), 1)
        add(r, socket)
        add(r, compare(register: 1, [1]))
        setMark(r, rule.mark)
        return r
    }

    /// The transport header's source (offset 0) or destination (offset 2) port into register 1.
    static func transportPort(offset: UInt32) -> OpaquePointer {
        let payload = nftnl_expr_alloc("payload")!
        nftnl_expr_set_u32(payload, UInt16(NFTNL_EXPR_PAYLOAD_BASE), NFT_PAYLOAD_TRANSPORT_HEADER.rawValue)
        nftnl_expr_set_u32(payload, UInt16(NFTNL_EXPR_PAYLOAD_OFFSET), offset)
        nftnl_expr_set_u32(payload, UInt16(NFTNL_EXPR_PAYLOAD_LEN), 2)
        nftnl_expr_set_u32(payload, UInt16(NFTNL_EXPR_PAYLOAD_DREG), 1)
        return payload
    }

    /// `meta l4proto P th dport D`.
    static func matchDestination(_ r: OpaquePointer, _ transport: InterceptionPlan.Capture.TransportProtocol, port: UInt16) {
        add(r, meta(key: NFT_META_L4PROTO.rawValue, register: 1))
        add(r, compare(register: 1, [transport.rawValue]))
        add(r, transportPort(offset: 2))
        add(r, compare(register: 1, [UInt8(port >> 8), UInt8(port & 0xff)]))
    }

    /// `meta mark set M`: the mark is a host-order u32 in the register, as nft writes it.
    private static func setMark(_ r: OpaquePointer, _ mark: UInt32) {
        add(r, immediate(register: 1, withUnsafeBytes(of: mark) { Array($0) }))
        let set = nftnl_expr_alloc("meta")!
        nftnl_expr_set_u32(set, UInt16(NFTNL_EXPR_META_KEY), NFT_META_MARK.rawValue)
        nftnl_expr_set_u32(set, UInt16(NFTNL_EXPR_META_SREG), 1)
        add(r, set)
    }

    static let outputChainName = "output"

    static func makeOutputRule(_ rule: InterceptionPlan.OutputRule, table: String) -> OpaquePointer {
        let r = newRule(table: table, chain: outputChainName)
        func hostOrder(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }
        switch rule {
        case .returnIfMarked(let mark):
            add(r, meta(key: NFT_META_MARK.rawValue, register: 1))
            add(r, compare(register: 1, hostOrder(mark)))
            add(r, verdict(NFT_RETURN.rawValue))
        case .returnIfLocalDestination:
            let fib = nftnl_expr_alloc("fib")!
            nftnl_expr_set_u32(fib, UInt16(NFTNL_EXPR_FIB_RESULT), NFT_FIB_RESULT_ADDRTYPE.rawValue)
            nftnl_expr_set_u32(fib, UInt16(NFTNL_EXPR_FIB_FLAGS), NFTA_FIB_F_DADDR.rawValue)
            nftnl_expr_set_u32(fib, UInt16(NFTNL_EXPR_FIB_DREG), 1)
            add(r, fib)
            add(r, compare(register: 1, hostOrder(UInt32(RTN_LOCAL))))
            add(r, verdict(NFT_RETURN.rawValue))
        case .returnIfUser(let uid):
            add(r, meta(key: NFT_META_SKUID.rawValue, register: 1))
            add(r, compare(register: 1, hostOrder(uid)))
            add(r, verdict(NFT_RETURN.rawValue))
        case .returnIfGroup(let gid):
            add(r, meta(key: NFT_META_SKGID.rawValue, register: 1))
            add(r, compare(register: 1, hostOrder(gid)))
            add(r, verdict(NFT_RETURN.rawValue))
        case .mark(let transport, let port, let ipv4Only, let mark):
            if ipv4Only {
                add(r, meta(key: NFT_META_NFPROTO.rawValue, register: 1))
                add(r, compare(register: 1, [UInt8(NFPROTO_IPV4)]))
            }
            matchDestination(r, transport, port: port)
            setMark(r, mark)
        }
        return r
    }

    /// A verdict (`return`, ...) into the verdict register.
    static func verdict(_ code: Int32) -> OpaquePointer {
        let e = nftnl_expr_alloc("immediate")!
        nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_IMM_DREG), UInt32(NFT_REG_VERDICT.rawValue))
        nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_IMM_VERDICT), UInt32(bitPattern: code))
        return e
    }

    static func add(_ rule: OpaquePointer, _ expression: OpaquePointer) {
        nftnl_rule_add_expr(rule, expression)
    }

    static func meta(key: UInt32, register: UInt32) -> OpaquePointer {
        let e = nftnl_expr_alloc("meta")!
        nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_META_KEY), key)
        nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_META_DREG), register)
        return e
    }

    static func compare(register: UInt32, _ bytes: [UInt8], op: UInt32 = NFT_CMP_EQ.rawValue) -> OpaquePointer {
        let e = nftnl_expr_alloc("cmp")!
        nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_CMP_SREG), register)
        nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_CMP_OP), op)
        bytes.withUnsafeBytes { _ = nftnl_expr_set(e, UInt16(NFTNL_EXPR_CMP_DATA), $0.baseAddress, UInt32($0.count)) }
        return e
    }

    private static func immediate(register: UInt32, _ bytes: [UInt8]) -> OpaquePointer {
        let e = nftnl_expr_alloc("immediate")!
        nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_IMM_DREG), register)
        bytes.withUnsafeBytes { _ = nftnl_expr_set(e, UInt16(NFTNL_EXPR_IMM_DATA), $0.baseAddress, UInt32($0.count)) }
        return e
    }

    /// Every rule of `plan` rendered by libnftnl, one line each, as `nft --debug=netlink` shows
    /// them: what tests compare against.
    public static func render(_ plan: InterceptionPlan) -> [String] {
        func text(_ r: OpaquePointer) -> String {
            defer { nftnl_rule_free(r) }
            var text = [CChar](repeating: 0, count: 4096)
            _ = nftnl_rule_snprintf(&text, text.count, r, UInt32(NFTNL_OUTPUT_DEFAULT.rawValue), 0)
            return String(cString: text)
        }
        return plan.bypassRules.map { text(makeBypassRule($0, table: plan.tableName)) }
            + plan.rules.map { text(makeRule($0, table: plan.tableName)) }
            + plan.identityRules.map { text(makeIdentityRule($0, table: plan.tableName)) }
            + plan.outputRules.map { text(makeOutputRule($0, table: plan.tableName)) }
    }
}
