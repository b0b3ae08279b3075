import RelayCore
import Synchronization

/// TCP connection limits that hold across workers: in total and per client address.
///
/// The one lock workers share, taken only when a connection opens or closes — never per query.
final class ConnectionLimits: Sendable {
    let maxTotal: Int
    let maxPerClient: Int
    private let state = Mutex<(total: Int, perClient: [IPAddress: Int])>((0, [:]))

    init(maxTotal: Int, maxPerClient: Int) {
        self.maxTotal = maxTotal
        self.maxPerClient = maxPerClient
    }

    /// Counts a new connection from `client`; false (and nothing counted) when over a limit.
    func acquire(_ client: IPAddress) -> Bool {
        state.withLock { state in
            let mine = state.perClient[client, default: 0]
            guard state.total < maxTotal, mine < maxPerClient else { return false }
            state.total += 1
            state.perClient[client] = mine + 1
            return true
        }
    }

    func release(_ client: IPAddress) {
        state.withLock { state in
            state.total -= 1
            let mine = state.perClient[client, default: 1] - 1
            state.perClient[client] = mine > 0 ? mine : nil
        }
    }

    var open: Int { state.withLock { $0.total } }
}
