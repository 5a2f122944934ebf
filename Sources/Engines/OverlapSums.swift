import Numerics
import Recon
import SwiftFFTW

/// Sums over this rank's region of the object that frames on several ranks
/// add to (a complex numerator and a real denominator per pixel): each rank
/// adds its own frames' shares into `numerator` and `denominator`, sends
/// the part over each peer's box, and `combine` completes them into
/// `totalNumerator` and `totalDenominator`.
///
/// Every rank adds the contributions of all ranks holding a pixel in rank
/// order, so shared pixels come out bit-identical on every rank that holds
/// them. The exchange is set up once and may run while the caller updates
/// frames that do not meet a peer.
final class OverlapSums {
    let region: Box
    let numerator: ComplexBuffer
    let denominator: UnsafeMutablePointer<Float>
    let totalNumerator: ComplexBuffer
    let totalDenominator: UnsafeMutablePointer<Float>
    private let rank: Int
    private let ranks: Int
    private let exchange: Exchange
    private(set) var running = false
    private let peers: [(peer: Int, box: Box, send: ComplexBuffer, sendReal: UnsafeMutableBufferPointer<Float>,
                         receive: ComplexBuffer, receiveReal: UnsafeMutableBufferPointer<Float>)]

    init(comm: Collective, layout: TileLayout) throws {
        rank = comm.rank
        ranks = comm.size
        region = layout.regions[comm.rank]
        numerator = ComplexBuffer(count: region.area)
        denominator = .allocate(capacity: region.area)
        totalNumerator = ComplexBuffer(count: region.area)
        totalDenominator = .allocate(capacity: region.area)
        peers = layout.overlaps(of: comm.rank).map { o in
            (o.peer, o.box, ComplexBuffer(count: o.box.area), UnsafeMutableBufferPointer<Float>.allocate(capacity: o.box.area),
             ComplexBuffer(count: o.box.area), UnsafeMutableBufferPointer<Float>.allocate(capacity: o.box.area))
        }
        exchange = try comm.makeExchange(peers.map {
            PeerTransfer(peer: $0.peer, sendComplex: UnsafeBufferPointer($0.send.buffer), sendReal: UnsafeBufferPointer($0.sendReal),
                         receiveComplex: $0.receive.buffer, receiveReal: $0.receiveReal)
        })
    }

    deinit {
        // An iteration cut short by an error: MPI must be done with the
        // buffers before they are freed.
        if running { try? exchange.wait() }
        denominator.deallocate()
        totalDenominator.deallocate()
        for p in peers { p.sendReal.deallocate(); p.receiveReal.deallocate() }
    }

    var hasPeers: Bool { !peers.isEmpty }

    /// Zeroes this rank's own sums before its frames add to them.
    func clear() {
        floats(numerator.baseAddress).update(repeating: 0, count: 2 * region.area)
        denominator.update(repeating: 0, count: region.area)
    }

    /// Sends this rank's sums over each peer's box (complete once the
    /// frames meeting peers have added theirs) and receives the peers'.
    func start() throws {
        for p in peers {
            copy(box: p.box, into: p.send.baseAddress, p.sendReal.baseAddress!)
        }
        try exchange.start()
        running = true
    }

    /// Lets a running exchange advance.
    func progress() throws {
        if running { try exchange.progress() }
    }

    /// Completes the region's sums into the totals.
    func combine() throws {
        let w = region.width, area = region.area
        if !running { try start() }
        try exchange.wait()
        running = false
        let tn = floats(totalNumerator.baseAddress)
        // With no rank before this one, its own sums come first everywhere:
        // 0 + x in one pass (x + 0 keeps 0 + x's rounding, -0 included).
        let ownFirst = peers.allSatisfy { $0.peer > rank }
        if !ownFirst {
            tn.update(repeating: 0, count: 2 * area)
            totalDenominator.update(repeating: 0, count: area)
        }
        var next = 0
        for q in 0..<ranks {
            if q == rank {
                let n = floats(numerator.baseAddress)
                if ownFirst {
                    for i in 0..<(2 * area) { tn[i] = n[i] + 0 }
                    for i in 0..<area { totalDenominator[i] = denominator[i] + 0 }
                } else {
                    for i in 0..<(2 * area) { tn[i] += n[i] }
                    for i in 0..<area { totalDenominator[i] += denominator[i] }
                }
            } else if next < peers.count && peers[next].peer == q {
                let p = peers[next]
                let r = floats(p.receive.baseAddress), rr = p.receiveReal.baseAddress!
                let bw = p.box.width
                for y in 0..<p.box.height {
                    let row = (p.box.y0 - region.y0 + y) * w + (p.box.x0 - region.x0)
                    for x in 0..<bw {
                        tn[2 * (row + x)] += r[2 * (y * bw + x)]
                        tn[2 * (row + x) + 1] += r[2 * (y * bw + x) + 1]
                        totalDenominator[row + x] += rr[y * bw + x]
                    }
                }
                next += 1
            }
        }
    }

    private func copy(box: Box, into out: UnsafeMutablePointer<Complex<Float>>, _ outReal: UnsafeMutablePointer<Float>) {
        let w = region.width, bw = box.width
        for y in 0..<box.height {
            let row = (box.y0 - region.y0 + y) * w + (box.x0 - region.x0)
            (out + y * bw).update(from: numerator.baseAddress + row, count: bw)
            (outReal + y * bw).update(from: denominator + row, count: bw)
        }
    }
}

/// The interleaved floats of complex values, for the kernels.
@inline(__always)
func floats(_ p: UnsafeMutablePointer<Complex<Float>>) -> UnsafeMutablePointer<Float> {
    UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
}
