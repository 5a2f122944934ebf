import Foundation
import Recon
import Testing

@Suite struct TileLayoutTests {
    let corners: [(y: Int, x: Int)] = Scan(pattern: .spiral(points: 97), step: 10).positions().map {
        (Int($0.y.rounded()) + 60, Int($0.x.rounded()) + 70)
    }

    @Test(arguments: [1, 2, 3, 4, 6, 7])
    func tilesCoverTheObjectOnceAndBalanceFrames(ranks: Int) throws {
        let layout = try TileLayout(corners: corners, frameSize: 32, objectHeight: 160, objectWidth: 180, ranks: ranks)
        #expect(layout.rows * layout.columns == ranks)
        var covered = [Int](repeating: 0, count: 160 * 180)
        for t in layout.tiles { for y in t.y0..<t.y1 { for x in t.x0..<t.x1 { covered[y * 180 + x] += 1 } } }
        #expect(covered.allSatisfy { $0 == 1 })
        // Bands split frames evenly, then tiles split each band evenly.
        let counts = (0..<ranks).map { layout.frames(of: $0).count }
        #expect(counts.max()! - counts.min()! <= layout.columns + 1, "\(counts)")
        #expect(counts.reduce(0, +) == corners.count)
        for (f, c) in corners.enumerated() {
            let region = layout.regions[layout.owner[f]]
            #expect(region.contains(Box(y0: c.y, x0: c.x, y1: c.y + 32, x1: c.x + 32)))
        }
        for r in 0..<ranks {
            #expect(layout.regions[r].contains(layout.tiles[r]))
            for o in layout.overlaps(of: r) {
                #expect(layout.overlaps(of: o.peer).contains { $0.peer == r && $0.box == o.box })
            }
        }
    }

    @Test func layoutErrorsSayWhatToChange() {
        #expect(throws: TileLayout.LayoutError.tooManyRanks(ranks: 98, frames: 97)) {
            try TileLayout(corners: corners, frameSize: 32, objectHeight: 160, objectWidth: 180, ranks: 98)
        }
        #expect(throws: TileLayout.LayoutError.gridDoesNotFit(rows: 3, columns: 1, ranks: 2)) {
            try TileLayout(corners: corners, frameSize: 32, objectHeight: 160, objectWidth: 180, ranks: 2, grid: (3, 1))
        }
        #expect(throws: TileLayout.LayoutError.windowOutsideObject(frame: 0)) {
            try TileLayout(corners: [(150, 0)], frameSize: 32, objectHeight: 160, objectWidth: 180, ranks: 1)
        }
        #expect(TileLayout.LayoutError.gridDoesNotFit(rows: 3, columns: 1, ranks: 2).description.contains("3x1"))
    }

    @Test func squareObjectsGetSquareGrids() throws {
        let four = try TileLayout(corners: corners, frameSize: 32, objectHeight: 170, objectWidth: 170, ranks: 4)
        #expect(four.rows == 2 && four.columns == 2)
        let wide = try TileLayout(corners: corners, frameSize: 32, objectHeight: 160, objectWidth: 640, ranks: 4)
        #expect(wide.rows == 1 && wide.columns == 4)
    }
}

/// The solver's windows for a sub-pixel model: the same positions, the
/// offsets rounding to 0..<steps, so at most steps^2 shifted probes.
@Suite struct SolverWindowTests {
    let grid = ObjectGrid(positions: Scan(pattern: .spiral(points: 300), step: 0.37e-6).positions(), pixelSize: 0.1e-6,
                          frameSize: 32)

    @Test(arguments: [1, 2, 4, 8])
    func offsetsRoundBelowAWholePixelAndPositionsStay(steps: Int) {
        let (corners, offsets) = grid.windows(subpixelSteps: steps)
        var classes = Set<[Int]>()
        for i in corners.indices {
            let exact = grid.exactCorners[i]
            #expect(abs(Double(corners[i].y) + offsets[i].y - exact.y) < 1e-9 && abs(Double(corners[i].x) + offsets[i].x - exact.x) < 1e-9)
            let k = [Int((offsets[i].y * Double(steps)).rounded()), Int((offsets[i].x * Double(steps)).rounded())]
            #expect(k.allSatisfy { (0..<steps).contains($0) }, "frame \(i): offset \(offsets[i]) rounds to \(k) of \(steps)")
            #expect(corners[i].y >= 0 && corners[i].x >= 0 && corners[i].y + 32 <= grid.height && corners[i].x + 32 <= grid.width)
            classes.insert(k)
        }
        #expect(classes.count <= steps * steps)
        // The plain floor corners would need a class more per axis.
        let plain = Set(grid.offsets.map { [Int(($0.y * Double(steps)).rounded()), Int(($0.x * Double(steps)).rounded())] })
        #expect(plain.count > classes.count)
    }

    @Test func wholePixelModelKeepsThePlainWindows() {
        let (corners, offsets) = grid.windows(subpixelSteps: 0)
        #expect(corners.elementsEqual(grid.corners) { $0 == $1 })
        #expect(offsets.elementsEqual(grid.offsets) { $0 == $1 })
    }
}

@Suite struct FrameOrderTests {
    func frames(_ corners: [(y: Int, x: Int)]) -> LocalFrames {
        LocalFrames(indices: Array(corners.indices), corners: corners, amplitudes: [], weights: corners.map { _ in 1 })
    }

    @Test func aGridIsWalkedOneNeighbourAtATime() {
        // 8 x 8 corners 5 pixels apart, listed column by column.
        let corners = (0..<64).map { (y: 5 * ($0 % 8), x: 5 * ($0 / 8)) }
        let order = frames(corners).localityOrder(cell: 5)
        #expect(order.sorted() == Array(0..<64))
        for (a, b) in zip(order, order.dropFirst()) {
            #expect(abs(corners[a].y - corners[b].y) + abs(corners[a].x - corners[b].x) == 5, "\(corners[a]) -> \(corners[b])")
        }
    }

    @Test func aSpiralIsVisitedNeighbourByNeighbour() {
        let corners: [(y: Int, x: Int)] = Scan(pattern: .spiral(points: 400), step: 10).positions().map {
            (Int($0.y.rounded()) + 120, Int($0.x.rounded()) + 120)
        }
        let order = frames(corners).localityOrder(cell: 8)
        #expect(order.sorted() == Array(corners.indices))
        func meanStep(_ o: [Int]) -> Double {
            zip(o, o.dropFirst()).map { hypot(Double(corners[$0].y - corners[$1].y), Double(corners[$0].x - corners[$1].x)) }
                .reduce(0, +) / Double(o.count - 1)
        }
        // Golden-angle steps cross the scan; the curve's stay near one scan step.
        let scan = meanStep(Array(corners.indices)), curve = meanStep(order)
        #expect(scan > 50 && curve < 20, "mean step: scan order \(scan), locality order \(curve) pixels")

        // Any subset (one rank's frames, those measured so far) keeps its order in the whole scan.
        let subset = corners.indices.filter { $0 % 3 != 1 && corners[$0].x > 100 }
        let alone = frames(subset.map { corners[$0] }).localityOrder(cell: 8).map { subset[$0] }
        #expect(alone == order.filter { subset.contains($0) })
    }

    @Test func framesMeetingASharedBoxComeFirst() {
        let corners: [(y: Int, x: Int)] = Scan(pattern: .spiral(points: 200), step: 10).positions().map {
            (Int($0.y.rounded()) + 100, Int($0.x.rounded()) + 100)
        }
        // Two boxes a neighbour shares: a band to the right and a corner below.
        let shared = [Box(y0: 0, x0: 150, y1: 400, x1: 190), Box(y0: 180, x0: 0, y1: 200, x1: 30)]
        let size = 32
        let (order, first) = frames(corners).visitOrder(cell: 4, size: size, shared: shared)
        #expect(order.sorted() == Array(corners.indices))
        func meets(_ j: Int) -> Bool {
            shared.contains { b in
                corners[j].y < b.y1 && corners[j].y + size > b.y0 && corners[j].x < b.x1 && corners[j].x + size > b.x0
            }
        }
        let meeting = corners.indices.filter(meets)
        #expect(first == meeting.count && first > 10 && first < corners.count - 10)
        #expect(order.prefix(first).allSatisfy(meets) && !order.dropFirst(first).contains(where: meets))
        // Each part keeps the curve's order.
        let curve = frames(corners).localityOrder(cell: 4)
        #expect(Array(order.prefix(first)) == curve.filter(meets))
        #expect(Array(order.dropFirst(first)) == curve.filter { !meets($0) })
        // With nothing shared (one rank) the order is the curve's.
        #expect(frames(corners).visitOrder(cell: 4, size: size, shared: []) == (curve, 0))
    }
}
