/// A rectangle of object pixels, [y0, y1) x [x0, x1).
public struct Box: Equatable, Hashable, Codable, Sendable, CustomStringConvertible {
    public var y0: Int, x0: Int, y1: Int, x1: Int

    public init(y0: Int, x0: Int, y1: Int, x1: Int) {
        self.y0 = y0
        self.x0 = x0
        self.y1 = y1
        self.x1 = x1
    }

    public var height: Int { max(0, y1 - y0) }
    public var width: Int { max(0, x1 - x0) }
    public var area: Int { height * width }
    public var isEmpty: Bool { area == 0 }

    public func intersection(_ o: Box) -> Box {
        let b = Box(y0: max(y0, o.y0), x0: max(x0, o.x0), y1: min(y1, o.y1), x1: min(x1, o.x1))
        return b.isEmpty ? Box(y0: b.y0, x0: b.x0, y1: b.y0, x1: b.x0) : b
    }

    public func union(_ o: Box) -> Box {
        if isEmpty { return o }
        if o.isEmpty { return self }
        return Box(y0: min(y0, o.y0), x0: min(x0, o.x0), y1: max(y1, o.y1), x1: max(x1, o.x1))
    }

    public func contains(_ o: Box) -> Bool { o.y0 >= y0 && o.x0 >= x0 && o.y1 <= y1 && o.x1 <= x1 }

    public var description: String { "[\(y0)..<\(y1)) x [\(x0)..<\(x1))" }
}

/// How the object and the frames are split over ranks.
///
/// The object grid is cut into `rows` bands of equal frame counts (by the
/// frames' probe centres), each band into `columns` tiles of equal counts:
/// tiles cover the object exactly once and each rank owns one, with the
/// frames whose probe centre falls in it. A rank works on its region, the
/// bounding box of its tile and its frames' windows: the tile plus a halo as
/// wide as the probe footprint. Where regions meet, ranks exchange sums.
public struct TileLayout: Equatable, Codable, Sendable {
    public let objectHeight: Int
    public let objectWidth: Int
    public let frameSize: Int
    public let rows: Int
    public let columns: Int
    /// Tile of each rank, row-major over the grid.
    public let tiles: [Box]
    /// Rank owning each frame.
    public let owner: [Int]
    /// Region of each rank.
    public let regions: [Box]
    /// Each frame's place along a Hilbert curve through all frames' window
    /// corners: frames near on the curve are near on the object, so every
    /// K-th frame along it makes a batch spread evenly over the object, the
    /// same batch whatever the rank count.
    public let curvePlace: [Int]

    public var ranks: Int { tiles.count }

    public enum LayoutError: Error, CustomStringConvertible, Equatable {
        case tooManyRanks(ranks: Int, frames: Int)
        case gridDoesNotFit(rows: Int, columns: Int, ranks: Int)
        case windowOutsideObject(frame: Int)

        public var description: String {
            switch self {
            case .tooManyRanks(let r, let f): "\(r) ranks for \(f) frames: use at most one rank per frame"
            case .gridDoesNotFit(let r, let c, let n): "a \(r)x\(c) tile grid does not fit \(n) ranks (rows x columns must equal the rank count)"
            case .windowOutsideObject(let f): "frame \(f)'s window lies outside the object grid"
            }
        }
    }

    /// `corners` are the frames' window corners on the object grid (integer pixels).
    public init(corners: [(y: Int, x: Int)], frameSize: Int, objectHeight: Int, objectWidth: Int,
                ranks: Int, grid: (rows: Int, columns: Int)? = nil) throws {
        guard ranks <= corners.count else { throw LayoutError.tooManyRanks(ranks: ranks, frames: corners.count) }
        for (i, c) in corners.enumerated() where c.y < 0 || c.x < 0 || c.y + frameSize > objectHeight || c.x + frameSize > objectWidth {
            throw LayoutError.windowOutsideObject(frame: i)
        }
        let (rows, columns) = try grid.map { g -> (Int, Int) in
            guard g.rows > 0, g.columns > 0, g.rows * g.columns == ranks else {
                throw LayoutError.gridDoesNotFit(rows: g.rows, columns: g.columns, ranks: ranks)
            }
            return (g.rows, g.columns)
        } ?? TileLayout.squarestGrid(ranks: ranks, height: objectHeight, width: objectWidth)
        self.objectHeight = objectHeight
        self.objectWidth = objectWidth
        self.frameSize = frameSize
        self.rows = rows
        self.columns = columns

        let half = frameSize / 2
        let byY = corners.indices.sorted { (corners[$0].y, $0) < (corners[$1].y, $1) }
        var owner = [Int](repeating: 0, count: corners.count)
        var tiles: [Box] = []
        var bandTop = 0
        for (band, bandFrames) in TileLayout.split(byY, parts: rows).enumerated() {
            // The band ends halfway between its last centre and the next band's first.
            let bandBottom: Int
            if band == rows - 1 {
                bandBottom = objectHeight
            } else {
                let next = byY[TileLayout.split(byY, parts: rows)[band + 1].startIndex]
                bandBottom = (corners[bandFrames.last!].y + corners[next].y) / 2 + half
            }
            let byX = bandFrames.sorted { (corners[$0].x, $0) < (corners[$1].x, $1) }
            let pieces = TileLayout.split(byX, parts: columns)
            var left = 0
            for (column, tileFrames) in pieces.enumerated() {
                let right = column == columns - 1 ? objectWidth
                    : (corners[tileFrames.last!].x + corners[byX[pieces[column + 1].startIndex]].x) / 2 + half
                let rank = band * columns + column
                tiles.append(Box(y0: bandTop, x0: left, y1: max(bandTop, bandBottom), x1: max(left, right)))
                for f in tileFrames { owner[f] = rank }
                left = max(left, right)
            }
            bandTop = max(bandTop, bandBottom)
        }
        self.tiles = tiles
        self.owner = owner
        var regions = tiles
        for (f, c) in corners.enumerated() {
            regions[owner[f]] = regions[owner[f]].union(Box(y0: c.y, x0: c.x, y1: c.y + frameSize, x1: c.x + frameSize))
        }
        self.regions = regions
        var place = [Int](repeating: 0, count: corners.count)
        let all = LocalFrames(indices: Array(corners.indices), corners: corners, amplitudes: [], weights: [])
        for (k, f) in all.localityOrder(cell: max(1, frameSize / 8)).enumerated() { place[f] = k }
        curvePlace = place
    }

    /// Frames split into `parts` consecutive groups whose sizes differ by at most one.
    static func split(_ frames: [Int], parts: Int) -> [ArraySlice<Int>] {
        (0..<parts).map { p in frames[(frames.count * p / parts)..<(frames.count * (p + 1) / parts)] }
    }

    /// The factorization rows x columns = ranks whose tiles are closest to square.
    static func squarestGrid(ranks: Int, height: Int, width: Int) -> (Int, Int) {
        var best = (1, ranks), bestScore = Double.infinity
        for r in 1...ranks where ranks % r == 0 {
            let c = ranks / r
            let aspect = (Double(height) / Double(r)) / (Double(width) / Double(c))
            let score = abs(aspect > 1 ? aspect : 1 / aspect)
            if score < bestScore { (best, bestScore) = ((r, c), score) }
        }
        return best
    }

    /// Frames owned by `rank`, in scan order.
    public func frames(of rank: Int) -> [Int] { owner.indices.filter { owner[$0] == rank } }

    /// Ranks whose regions meet `rank`'s, with the shared box.
    public func overlaps(of rank: Int) -> [(peer: Int, box: Box)] {
        regions.indices.compactMap { s in
            guard s != rank else { return nil }
            let b = regions[rank].intersection(regions[s])
            return b.isEmpty ? nil : (s, b)
        }
    }
}
