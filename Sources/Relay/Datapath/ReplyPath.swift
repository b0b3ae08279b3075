/// How an answer gets back to the client that asked: from a reply socket bound to the address it
/// asked (UDP), or on its TCP connection (slot and generation: an answer for a connection that
/// closed must not reach the one that took its slot).
enum ReplyPath: Equatable {
    case udp
    case tcp(slot: Int32, generation: UInt32)

    var isTCP: Bool {
        if case .tcp = self { return true }
        return false
    }
}
