import Interception
import Logging
import RelayCore

/// `bypass.block_addresses`: the files of known DoH server addresses, read like lists (a line
/// that is not an address or a CIDR is logged with file:line and skipped; a file that cannot be
/// read fails the load, and on reload the previous addresses stay), for the nft table's sets.
enum BlockedAddresses {
    static func load(_ paths: [String], logger: Logger) throws -> [IPPrefix] {
        var prefixes: [IPPrefix] = []
        for path in paths {
            let list = try AddressList.load(path)
            for bad in list.rejected.prefix(20) {
                logger.warning("\(path):\(bad.line): rejected: not an address or CIDR: \(bad.text)")
            }
            logger.info("bypass.block_addresses \(path): \(list.prefixes.count) addresses and prefixes, \(list.rejected.count) rejected")
            prefixes += list.prefixes
        }
        return prefixes
    }

    /// The table's counters by name as the relay's counter fields.
    static func counters(_ read: [String: UInt64]) -> Counters {
        var counters = Counters()
        counters.encryptedDNSBlocked = Int(read[InterceptionPlan.encryptedDNSCounter] ?? 0)
        counters.blockedAddressPackets = Int(read[InterceptionPlan.blockedAddressesCounter] ?? 0)
        return counters
    }
}
