import LinuxNet
import RelayCore

/// A worker's upstream UDP sockets that send from clients' own addresses
/// (`upstream.client_identity: source`): one per client and server, IP_TRANSPARENT, bound to
/// the client's address on a kernel-chosen random port and connected to the server
/// (UpstreamUDPSocket), kept in a least-recently-used table of fixed size.
///
/// Why per client and server, connected: the kernel hands a connected socket only datagrams from
/// its server, so a client's own traffic to other hosts that happens to use the same port is
/// never taken for an answer; and a client that makes the relay ask a server it controls learns
/// only the ports of its own sockets, never another client's (RFC 5452 §9.2).
///
/// Bounded: at most `capacity` sockets; a new pair takes the least recently used entry, whose
/// socket retires (SocketTurnover) until its answers are in. When too many retired sockets still
/// wait, no entry can be taken and the caller sends from the host's own address instead
/// (counted). After a batch, each socket that carried queries is replaced by one on a new port,
/// within the turnover's budget, as the shared pools do.
final class SourceSockets {
    struct Key: Hashable {
        var client: IPAddress
        var server: Endpoint
    }

    private struct Entry {
        var key = Key(client: .anyV4, server: Endpoint(address: .anyV4, port: 0))
        var socket: Socket?
        var newer: Int32 = -1
        var older: Int32 = -1
        /// Queries it carried in the current batch.
        var uses = 0
    }

    let capacity: Int
    private var entries: [Entry]
    private var byKey: [Key: Int32]
    private var newest: Int32 = -1
    private var oldest: Int32 = -1
    private var unused: [Int32]
    /// Entries whose socket carried queries in the current batch.
    private var usedInBatch: [Int32] = []
    private let bypassMark: UInt32
    private let epoll: Epoll
    let turnover: SocketTurnover
    /// Sockets opened since start, and open now.
    private(set) var opened = 0
    private(set) var open = 0
    /// Why the last socket could not be opened, for a rate-limited warning.
    private(set) var lastError: String?

    init(capacity: Int, maxRetiring: Int, bypassMark: UInt32, epoll: Epoll) {
        self.capacity = max(1, capacity)
        self.bypassMark = bypassMark
        self.epoll = epoll
        turnover = SocketTurnover(maxRetiring: maxRetiring, epoll: epoll)
        entries = [Entry](repeating: Entry(), count: self.capacity)
        byKey = Dictionary(minimumCapacity: self.capacity)
        unused = (0..<Int32(self.capacity)).reversed()
        usedInBatch.reserveCapacity(256)
    }

    /// The descriptor that sends from `client` to `server`, opened when the pair is new; nil when
    /// none can be had (the families differ, the bind fails, or too many retired sockets wait).
    /// `closeAt` is when a socket retired now may be closed whatever waits on it.
    @inline(__always)
    func descriptor(client: IPAddress, server: Endpoint, closeAt: UInt64) -> Int32? {
        guard client.isIPv6 == server.address.isIPv6 else { return nil }
        let key = Key(client: client, server: server)
        if let index = byKey[key] {
            moveToNewest(Int(index))
            markUsed(Int(index))
            return entries[Int(index)].socket!.fd
        }
        let index: Int
        if let free = unused.popLast() {
            index = Int(free)
        } else {
            // Full: the least recently used pair gives up its entry; its socket waits for its answers.
            guard turnover.hasRoom, oldest >= 0 else { return nil }
            index = Int(oldest)
            unlink(index)
            byKey[entries[index].key] = nil
            if let old = entries[index].socket {
                turnover.retire(old, closeAt: closeAt)
                open -= 1
            }
            entries[index].socket = nil
        }
        guard let socket = openSocket(key) else {
            unused.append(Int32(index))
            return nil
        }
        entries[index].key = key
        entries[index].socket = socket
        entries[index].uses = 0
        byKey[key] = Int32(index)
        linkNewest(index)
        markUsed(index)
        return socket.fd
    }

    /// After a batch went out: each socket that carried queries is replaced by one on a new
    /// random port, within the turnover's budget.
    @inline(__always)
    func batchSent(now: UInt64, timeoutNanoseconds: UInt64) {
        guard !usedInBatch.isEmpty else { return }
        for position in 0..<usedInBatch.count {
            let index = Int(usedInBatch[position])
            guard entries[index].uses > 0 else { continue }
            entries[index].uses = 0
            guard let old = entries[index].socket, turnover.mayReplace(now: now), let fresh = openSocket(entries[index].key) else { continue }
            turnover.retire(old, closeAt: now + timeoutNanoseconds + 100_000_000)
            open -= 1
            entries[index].socket = fresh
        }
        usedInBatch.removeAll(keepingCapacity: true)
    }

    func closeAll() {
        for index in entries.indices {
            if let socket = entries[index].socket {
                epoll.remove(socket.fd)
                socket.close()
            }
            entries[index].socket = nil
        }
        byKey.removeAll()
        open = 0
        turnover.closeAll()
    }

    private func openSocket(_ key: Key) -> Socket? {
        do {
            let socket = try UpstreamUDPSocket.open(family: key.server.family, source: key.client, server: key.server,
                                                    bypassMark: bypassMark, epoll: epoll)
            opened += 1
            open += 1
            return socket
        } catch {
            lastError = "cannot open a socket bound to the client address \(key.client) for \(key.server): \(error)"
            return nil
        }
    }

    @inline(__always)
    private func markUsed(_ index: Int) {
        if entries[index].uses == 0 { usedInBatch.append(Int32(index)) }
        entries[index].uses += 1
    }

    // MARK: The recency list

    private func unlink(_ index: Int) {
        let newer = entries[index].newer, older = entries[index].older
        if newer >= 0 { entries[Int(newer)].older = older } else if newest == Int32(index) { newest = older }
        if older >= 0 { entries[Int(older)].newer = newer } else if oldest == Int32(index) { oldest = newer }
        entries[index].newer = -1
        entries[index].older = -1
    }

    private func linkNewest(_ index: Int) {
        entries[index].older = newest
        entries[index].newer = -1
        if newest >= 0 { entries[Int(newest)].newer = Int32(index) }
        newest = Int32(index)
        if oldest < 0 { oldest = Int32(index) }
    }

    @inline(__always)
    private func moveToNewest(_ index: Int) {
        guard newest != Int32(index) else { return }
        unlink(index)
        linkNewest(index)
    }
}
