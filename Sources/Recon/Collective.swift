import Numerics

/// All the solver knows of parallelism: its rank, reductions of small
/// arrays, and point-to-point exchanges with chosen peers.
public protocol Collective: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    func sum(_ values: UnsafeMutableBufferPointer<Float>) throws
    func sum(_ values: UnsafeMutableBufferPointer<Complex<Float>>) throws
    func sum(_ values: UnsafeMutableBufferPointer<Double>) throws
    func maximum(_ value: Double) throws -> Double
    /// Every rank's `values` (the same count everywhere), in rank order.
    func gather(_ values: [Int]) throws -> [[Int]]
    /// `root`'s text on every rank.
    func broadcast(_ text: String, root: Int) throws -> String
    /// Sets up sending and receiving whole buffers (complex and real,
    /// matched by peer), run again at each `start`; the buffers stay the
    /// same for the exchange's life.
    func makeExchange(_ transfers: [PeerTransfer]) throws -> Exchange
}

/// What goes to and comes from one peer in an exchange.
public struct PeerTransfer {
    public var peer: Int
    public var sendComplex: UnsafeBufferPointer<Complex<Float>>
    public var sendReal: UnsafeBufferPointer<Float>
    public var receiveComplex: UnsafeMutableBufferPointer<Complex<Float>>
    public var receiveReal: UnsafeMutableBufferPointer<Float>

    public init(peer: Int, sendComplex: UnsafeBufferPointer<Complex<Float>>, sendReal: UnsafeBufferPointer<Float>,
                receiveComplex: UnsafeMutableBufferPointer<Complex<Float>>, receiveReal: UnsafeMutableBufferPointer<Float>) {
        self.peer = peer
        self.sendComplex = sendComplex
        self.sendReal = sendReal
        self.receiveComplex = receiveComplex
        self.receiveReal = receiveReal
    }
}

/// A halo exchange with fixed peers and buffers: `start` sends and
/// receives them all, and the buffers stay untouched until `wait` returns.
public protocol Exchange: AnyObject {
    func start() throws
    /// Lets the transfers advance while the caller computes (MPI moves
    /// large messages only inside its calls); true once all are done.
    @discardableResult
    func progress() throws -> Bool
    func wait() throws
}

/// One rank alone: every reduction is the identity and there are no peers.
public final class SingleRank: Collective {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func sum(_ values: UnsafeMutableBufferPointer<Float>) throws {}
    public func sum(_ values: UnsafeMutableBufferPointer<Complex<Float>>) throws {}
    public func sum(_ values: UnsafeMutableBufferPointer<Double>) throws {}
    public func maximum(_ value: Double) throws -> Double { value }
    public func gather(_ values: [Int]) throws -> [[Int]] { [values] }
    public func broadcast(_ text: String, root: Int) throws -> String { text }
    public func makeExchange(_ transfers: [PeerTransfer]) throws -> Exchange {
        precondition(transfers.isEmpty, "a single rank has no peers")
        return NoPeers()
    }
    final class NoPeers: Exchange {
        func start() throws {}
        func progress() throws -> Bool { true }
        func wait() throws {}
    }
}
