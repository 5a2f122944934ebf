import SwiftMPI

/// One rank's block after the halo exchange, halo included.
public struct HaloReport: Codable, Sendable {
    public var rank: Int
    public var dims: [Int]
    public var coords: [Int]
    public var blockHeight: Int
    public var blockWidth: Int
    public var halo: Int
    /// (blockHeight + 2 halo) x (blockWidth + 2 halo), row-major; -1 where no neighbour exists.
    public var values: [Double]
}

/// A halo exchange on a 2-D Cartesian grid of ranks: each rank owns a block
/// of a global array whose value at (y, x) is `value(y, x)`, then fills its
/// halo from its neighbours (rows first, then columns including the fresh
/// halo rows, so corners arrive too).
public enum HaloCheck {
    public static func value(y: Int, x: Int) -> Double { Double(y * 1000 + x) }

    public static func run(_ comm: Communicator, blockHeight: Int, blockWidth: Int, halo: Int) throws -> HaloReport {
        let grid = try comm.cartesian(dims: [0, 0], periodic: [false, false])
        let c = grid.comm
        let h = halo, bh = blockHeight, bw = blockWidth
        let height = bh + 2 * h, width = bw + 2 * h
        var local = [Double](repeating: -1, count: height * width)
        for y in 0..<bh {
            for x in 0..<bw {
                local[(y + h) * width + x + h] = value(y: grid.coords[0] * bh + y, x: grid.coords[1] * bw + x)
            }
        }

        // Dimension 0 (rows): strips of h full-width rows.
        let (up, down) = try grid.shift(dimension: 0)
        try exchange(c, &local, lowPeer: up, highPeer: down, tag: 10,
                     lowOwned: rowBlock(from: h, count: h, width: width),
                     highOwned: rowBlock(from: bh, count: h, width: width),
                     lowHalo: rowBlock(from: 0, count: h, width: width),
                     highHalo: rowBlock(from: bh + h, count: h, width: width))
        // Dimension 1 (columns): strips of h columns over the full height.
        let (left, right) = try grid.shift(dimension: 1)
        try exchange(c, &local, lowPeer: left, highPeer: right, tag: 20,
                     lowOwned: columnBlock(from: h, count: h, width: width, height: height),
                     highOwned: columnBlock(from: bw, count: h, width: width, height: height),
                     lowHalo: columnBlock(from: 0, count: h, width: width, height: height),
                     highHalo: columnBlock(from: bw + h, count: h, width: width, height: height))

        return HaloReport(rank: comm.rank, dims: grid.dims, coords: grid.coords,
                          blockHeight: bh, blockWidth: bw, halo: h, values: local)
    }

    private static func rowBlock(from row: Int, count: Int, width: Int) -> [Int] {
        Array((row * width)..<((row + count) * width))
    }

    private static func columnBlock(from column: Int, count: Int, width: Int, height: Int) -> [Int] {
        (0..<height).flatMap { y in (column..<(column + count)).map { y * width + $0 } }
    }

    /// Packs owned edges, sends them to both peers and unpacks what arrives into the halos.
    private static func exchange(_ comm: Communicator, _ local: inout [Double], lowPeer: Int?, highPeer: Int?, tag: Int,
                                 lowOwned: [Int], highOwned: [Int], lowHalo: [Int], highHalo: [Int]) throws {
        let sendLow = lowOwned.map { local[$0] }, sendHigh = highOwned.map { local[$0] }
        var fromLow = [Double](repeating: -1, count: lowHalo.count)
        var fromHigh = [Double](repeating: -1, count: highHalo.count)
        try sendLow.withUnsafeBufferPointer { sl in
            try sendHigh.withUnsafeBufferPointer { sh in
                try fromLow.withUnsafeMutableBufferPointer { fl in
                    try fromHigh.withUnsafeMutableBufferPointer { fh in
                        var requests: [Request] = []
                        if let lowPeer {
                            requests.append(try comm.irecv(into: fl, from: lowPeer, tag: tag + 1))
                            requests.append(try comm.isend(sl, to: lowPeer, tag: tag))
                        }
                        if let highPeer {
                            requests.append(try comm.irecv(into: fh, from: highPeer, tag: tag))
                            requests.append(try comm.isend(sh, to: highPeer, tag: tag + 1))
                        }
                        try Request.waitAll(requests)
                    }
                }
            }
        }
        if lowPeer != nil { for (i, idx) in lowHalo.enumerated() { local[idx] = fromLow[i] } }
        if highPeer != nil { for (i, idx) in highHalo.enumerated() { local[idx] = fromHigh[i] } }
    }
}
