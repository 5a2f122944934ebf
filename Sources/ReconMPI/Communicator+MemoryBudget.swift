import Foundation
import Recon
import SwiftMPI

extension Communicator {
    /// Ranks of this communicator on this rank's host (collective).
    public func ranksOnThisHost() throws -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a of the host name
        for byte in ProcessInfo.processInfo.hostName.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let mine = Int(bitPattern: UInt(hash))
        return try allgather(mine).filter { $0 == mine }.count
    }

    /// Collective: the memory a solve may take on each rank, in bytes: the
    /// given GB, or 80% of each host's memory shared by its ranks, the
    /// smallest over the ranks (the busiest rank may be any of them).
    public func memoryBudgetBytes(gigabytes: Double?) throws -> Double {
        let ranks = try ranksOnThisHost()
        let mine = gigabytes.map { $0 * 1e9 } ?? ScanCost.defaultBudgetBytes(ranksOnHost: ranks)
        return try allreduce(mine, op: .min)
    }
}
