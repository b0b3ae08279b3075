import RelayCore

/// One dnstap event (dnstap.proto, `Dnstap{identity, version, type = MESSAGE, message}`): what the
/// relay saw of one query, encoded by hand into a frame buffer (no allocation; the schema is
/// small and stable, and swift-protobuf would build a message object per frame).
public struct DnstapMessage {
    /// `Message.Type`: the four the relay emits.
    public enum Kind: UInt64, Sendable {
        case clientQuery = 5, clientResponse = 6, forwarderQuery = 7, forwarderResponse = 8
    }

    /// `SocketProtocol`.
    public enum Transport: UInt64, Sendable { case udp = 1, tcp = 2 }

    /// `Policy`: why the relay answered a query itself. Its texts are borrowed for the encoding
    /// (the writer keeps them in its own buffers; no allocation per frame).
    public struct Policy {
        public enum Action: UInt8, Sendable { case nxdomain = 1, nodata = 2, pass = 3, drop = 4, truncate = 5, localData = 6 }
        /// Free text: the list (`/etc/lists/ads.txt`, `bypass`).
        public var type: UnsafeRawBufferPointer
        /// The rule's text.
        public var rule: UnsafeRawBufferPointer
        public var action: Action
        /// Whether a rule matched the name (`match = QNAME`); not for an answer made under load.
        public var matchedName: Bool

        public init(type: UnsafeRawBufferPointer, rule: UnsafeRawBufferPointer, action: Action, matchedName: Bool = true) {
            self.type = type
            self.rule = rule
            self.action = action
            self.matchedName = matchedName
        }
    }

    public var kind: Kind
    public var transport: Transport
    /// The client (`query_address/port`) and the server it asked (`response_address/port`): for
    /// forwarder messages, the relay's side toward the upstream is the query side (nil: not
    /// known, left out).
    public var queryAddress: Endpoint?
    public var responseAddress: Endpoint
    /// Wall-clock times, ns since the epoch.
    public var queryTime: UInt64
    public var responseTime: UInt64?
    public var queryMessage: UnsafeRawBufferPointer?
    public var responseMessage: UnsafeRawBufferPointer?
    public var policy: Policy?

    public init(kind: Kind, transport: Transport, queryAddress: Endpoint?, responseAddress: Endpoint, queryTime: UInt64,
                responseTime: UInt64? = nil, queryMessage: UnsafeRawBufferPointer? = nil, responseMessage: UnsafeRawBufferPointer? = nil,
                policy: Policy? = nil) {
        self.kind = kind
        self.transport = transport
        self.queryAddress = queryAddress
        self.responseAddress = responseAddress
        self.queryTime = queryTime
        self.responseTime = responseTime
        self.queryMessage = queryMessage
        self.responseMessage = responseMessage
        self.policy = policy
    }

    /// The `Dnstap` protobuf of this event in `buffer`; its length, or nil when it does not fit.
    public func encode(identity: [UInt8], version: [UInt8], into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        var out = ProtobufWriter(buffer)
        if !identity.isEmpty { out.bytesField(1, identity) }
        if !version.isEmpty { out.bytesField(2, version) }
        out.messageField(14) { writeMessage(&$0) }
        out.varintField(15, 1)  // type = MESSAGE
        return out.overflowed ? nil : out.count
    }

    @inline(__always)
    private func writeMessage(_ m: inout ProtobufWriter) {
        m.varintField(1, kind.rawValue)
        m.varintField(2, responseAddress.address.isIPv6 ? 2 : 1)
        m.varintField(3, transport.rawValue)
        if let queryAddress { Self.address(queryAddress.address) { m.bytesField(4, $0) } }
        Self.address(responseAddress.address) { m.bytesField(5, $0) }
        if let queryAddress { m.varintField(6, UInt64(queryAddress.port)) }
        m.varintField(7, UInt64(responseAddress.port))
        m.varintField(8, queryTime / 1_000_000_000)
        m.fixed32Field(9, UInt32(queryTime % 1_000_000_000))
        if let queryMessage { m.bytesField(10, queryMessage) }
        if let responseTime {
            m.varintField(12, responseTime / 1_000_000_000)
            m.fixed32Field(13, UInt32(responseTime % 1_000_000_000))
        }
        if let responseMessage { m.bytesField(14, responseMessage) }
        if let policy {
            m.messageField(15) { p in
                if !policy.type.isEmpty { p.bytesField(1, policy.type) }
                if !policy.rule.isEmpty { p.bytesField(2, policy.rule) }
                p.varintField(3, UInt64(policy.action.rawValue))
                if policy.matchedName { p.varintField(4, 1) }  // match = QNAME
            }
        }
    }

    private static func address(_ address: IPAddress, _ body: (UnsafeRawBufferPointer) -> Void) {
        switch address {
        case .v4(let a): withUnsafeBytes(of: a.rawValue) { body($0) }
        case .v6(let a): withUnsafeBytes(of: (a.high, a.low)) { body($0) }
        }
    }
}
