/// A request with its body (at most the responder's `maxBodyBytes`).
public struct HTTPRequest: Sendable {
    public var head: HTTPRequestHead
    public var body: [UInt8]
    /// The peer's address, as the responder accepted it.
    public var peer: String

    public init(head: HTTPRequestHead, body: [UInt8] = [], peer: String = "") {
        self.head = head
        self.body = body
        self.peer = peer
    }
}
