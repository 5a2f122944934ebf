import Numerics
import Recon

/// The solver's communicator with every byte it hands to the network
/// counted: point-to-point halo exchanges apart from reductions, whose wire
/// traffic depends on the MPI library's algorithm (a ring sends about twice
/// the payload).
public final class TrafficCounter: Collective {
    private let base: Collective
    /// Bytes this rank posted to peers in exchanges.
    public private(set) var exchangeBytes = 0
    /// Bytes this rank contributed to reductions (the payload, once).
    public private(set) var reductionBytes = 0

    public init(_ base: Collective) { self.base = base }

    public func reset() { exchangeBytes = 0; reductionBytes = 0 }

    public var rank: Int { base.rank }
    public var size: Int { base.size }

    public func sum(_ values: UnsafeMutableBufferPointer<Float>) throws {
        reductionBytes += values.count * MemoryLayout<Float>.stride
        try base.sum(values)
    }

    public func sum(_ values: UnsafeMutableBufferPointer<Complex<Float>>) throws {
        reductionBytes += values.count * MemoryLayout<Complex<Float>>.stride
        try base.sum(values)
    }

    public func sum(_ values: UnsafeMutableBufferPointer<Double>) throws {
        reductionBytes += values.count * MemoryLayout<Double>.stride
        try base.sum(values)
    }

    public func maximum(_ value: Double) throws -> Double {
        reductionBytes += MemoryLayout<Double>.stride
        return try base.maximum(value)
    }

    public func gather(_ values: [Int]) throws -> [[Int]] {
        reductionBytes += values.count * MemoryLayout<Int>.stride * size
        return try base.gather(values)
    }

    public func broadcast(_ text: String, root: Int) throws -> String {
        reductionBytes += text.utf8.count
        return try base.broadcast(text, root: root)
    }

    public func makeExchange(_ transfers: [PeerTransfer]) throws -> Exchange {
        let bytes = transfers.reduce(0) {
            $0 + $1.sendComplex.count * MemoryLayout<Complex<Float>>.stride + $1.sendReal.count * MemoryLayout<Float>.stride
        }
        return Counted(try base.makeExchange(transfers), bytes: bytes, counter: self)
    }

    /// Adds the exchange's bytes at each start.
    final class Counted: Exchange {
        let base: Exchange
        let bytes: Int
        let counter: TrafficCounter
        init(_ base: Exchange, bytes: Int, counter: TrafficCounter) {
            self.base = base
            self.bytes = bytes
            self.counter = counter
        }
        func start() throws {
            counter.exchangeBytes += bytes
            try base.start()
        }
        func progress() throws -> Bool { try base.progress() }
        func wait() throws { try base.wait() }
    }
}
