import Numerics
import Recon
import SwiftMPI

/// The solver's communicator interface, carried by MPI.
extension Communicator: Collective {
    public func sum(_ values: UnsafeMutableBufferPointer<Float>) throws { try allreduce(values, op: .sum) }
    public func sum(_ values: UnsafeMutableBufferPointer<Complex<Float>>) throws { try allreduce(values, op: .sum) }
    public func sum(_ values: UnsafeMutableBufferPointer<Double>) throws { try allreduce(values, op: .sum) }
    public func maximum(_ value: Double) throws -> Double { try allreduce(value, op: .max) }

    public func gather(_ values: [Int]) throws -> [[Int]] {
        var all = [Int](repeating: 0, count: values.count * size)
        for (i, v) in values.enumerated() { all[rank * values.count + i] = v }
        try allreduce(&all, op: .sum)
        return (0..<size).map { Array(all[($0 * values.count)..<(($0 + 1) * values.count)]) }
    }

    /// Persistent requests, set up once: each iteration's exchange is one
    /// `MPI_Startall` with no matching set-up or allocation.
    public func makeExchange(_ transfers: [PeerTransfer]) throws -> Exchange {
        let requests = PersistentRequests()
        // Tags 1 and 2 keep the complex and real parts apart; MPI keeps order per peer.
        for t in transfers {
            try requests.addReceive(into: t.receiveComplex, from: t.peer, tag: 1, on: self)
            try requests.addReceive(into: t.receiveReal, from: t.peer, tag: 2, on: self)
        }
        for t in transfers {
            try requests.addSend(t.sendComplex, to: t.peer, tag: 1, on: self)
            try requests.addSend(t.sendReal, to: t.peer, tag: 2, on: self)
        }
        return MPIExchange(requests: requests)
    }
}

final class MPIExchange: Exchange {
    let requests: PersistentRequests
    init(requests: PersistentRequests) { self.requests = requests }
    func start() throws { try requests.start() }
    func progress() throws -> Bool { try requests.test() }
    func wait() throws { try requests.wait() }
}
