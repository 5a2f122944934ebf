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

    public func startExchange(_ transfers: [PeerTransfer]) throws -> PendingExchange {
        var requests: [Request] = []
        requests.reserveCapacity(4 * transfers.count)
        // Tags 1 and 2 keep the complex and real parts apart; MPI keeps order per peer.
        for t in transfers {
            requests.append(try irecv(into: t.receiveComplex, from: t.peer, tag: 1))
            requests.append(try irecv(into: t.receiveReal, from: t.peer, tag: 2))
        }
        for t in transfers {
            requests.append(try isend(t.sendComplex, to: t.peer, tag: 1))
            requests.append(try isend(t.sendReal, to: t.peer, tag: 2))
        }
        return MPIExchange(requests: requests)
    }
}

struct MPIExchange: PendingExchange {
    let requests: [Request]
    func progress() throws -> Bool {
        var done = true
        for r in requests where !r.isComplete { done = try r.test() && done }
        return done
    }
    func wait() throws { try Request.waitAll(requests) }
}
