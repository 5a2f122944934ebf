import Numerics
import SwiftMPI

/// What one rank saw in the collectives check; the test suite recomputes
/// the expected values from rank and size alone.
public struct CollectivesReport: Codable, Sendable {
    public var rank: Int
    public var size: Int
    public var maxMessageBytes: Int
    public var allreduceFloat: [Float]
    public var allreduceDouble: [Double]
    public var allreduceComplex: [[Float]]
    public var allreduceInt: [Int]
    public var allreduceMax: Int
    public var broadcast: [Double]
    public var ringReceived: [Int]
    public var ringSource: Int
    public var nonBlockingReceived: [Float]
    /// What each of three runs of one persistent exchange brought.
    public var persistentReceived: [[Float]]
    public var scattered: [Int]
    public var gathered: [Int]
    public var gatheredCounts: [Int]
    public var splitRank: Int
    public var splitSize: Int
}

/// Exercises every communicator operation with values that depend only on
/// rank, size and index, so the results can be checked independently.
public enum CollectivesCheck {
    /// Element i contributed by rank r to the allreduces.
    public static func contribution(rank: Int, index: Int) -> Int { (rank + 1) * (index + 1) }

    public static func run(_ comm: Communicator, length: Int) throws -> CollectivesReport {
        let r = comm.rank, n = comm.size

        var floats = (0..<length).map { Float(contribution(rank: r, index: $0)) }
        try comm.allreduce(&floats, op: .sum)
        var doubles = (0..<length).map { Double(contribution(rank: r, index: $0)) / 4 }
        try comm.allreduce(&doubles, op: .sum)
        var complex = (0..<length).map { Complex<Float>(Float(contribution(rank: r, index: $0)), -Float(r)) }
        try comm.allreduce(&complex, op: .sum)
        var ints = (0..<length).map { contribution(rank: r, index: $0) * 1_000_000_000 }
        try comm.allreduce(&ints, op: .sum)
        let maxRank = try comm.allreduce(r, op: .max)

        let broadcast = try comm.broadcast(r == 0 ? (0..<length).map { Double($0) + 0.25 } : [], root: 0)

        // Ring: each rank sends rank-dependent data of rank-dependent length to the next.
        let next = (r + 1) % n, previous = (r + n - 1) % n
        let outgoing = (0..<(length + r)).map { r * 100_000 + $0 }
        let ring: (values: [Int], status: Status)
        if r % 2 == 0 {
            try comm.send(outgoing, to: next, tag: 7)
            ring = try comm.receive(Int.self, from: previous, tag: 7)
        } else {
            ring = try comm.receive(Int.self, from: previous, tag: 7)
            try comm.send(outgoing, to: next, tag: 7)
        }

        // Non-blocking exchange with both neighbours at once.
        let sendBuffer = (0..<length).map { Float(r) + Float($0) / 1024 }
        var receiveBuffer = [Float](repeating: -1, count: length)
        try sendBuffer.withUnsafeBufferPointer { sendPtr in
            try receiveBuffer.withUnsafeMutableBufferPointer { receivePtr in
                let rq = try comm.irecv(into: receivePtr, from: previous, tag: 9)
                let sq = try comm.isend(sendPtr, to: next, tag: 9)
                try Request.waitAll([rq, sq])
            }
        }

        // One persistent exchange, set up once and run three times with new data.
        let send = UnsafeMutableBufferPointer<Float>.allocate(capacity: length)
        let receive = UnsafeMutableBufferPointer<Float>.allocate(capacity: length)
        defer { send.deallocate(); receive.deallocate() }
        var persistent: [[Float]] = []
        do {
            let requests = PersistentRequests()
            try requests.addReceive(into: receive, from: previous, tag: 11, on: comm)
            try requests.addSend(UnsafeBufferPointer(send), to: next, tag: 11, on: comm)
            for run in 0..<3 {
                for i in 0..<length { send[i] = Float(r * 1000 + run) + Float(i) / 1024 }
                receive.update(repeating: -1)
                try requests.start()
                while try !requests.test() {}
                persistent.append(Array(receive))
            }
        }

        // Scatter uneven pieces from the last rank, gather uneven pieces at rank 0.
        let scatterRoot = n - 1
        let counts = (0..<n).map { $0 + 1 }
        let all = (0..<counts.reduce(0, +)).map { $0 * 3 }
        let scattered = try comm.scatterv(r == scatterRoot ? all : [], counts: counts, root: scatterRoot)
        let gathered = try comm.gatherv((0..<(r + 2)).map { r * 10 + $0 }, root: 0)

        // Even and odd ranks in two communicators, ordered by descending rank.
        let split = try comm.split(color: r % 2, key: -r)

        return CollectivesReport(
            rank: r, size: n, maxMessageBytes: comm.maxMessageBytes,
            allreduceFloat: floats, allreduceDouble: doubles,
            allreduceComplex: complex.map { [$0.real, $0.imaginary] }, allreduceInt: ints, allreduceMax: maxRank,
            broadcast: broadcast, ringReceived: ring.values, ringSource: ring.status.source,
            nonBlockingReceived: receiveBuffer, persistentReceived: persistent, scattered: scattered,
            gathered: gathered.values, gatheredCounts: gathered.counts,
            splitRank: split?.rank ?? -1, splitSize: split?.size ?? 0)
    }
}
