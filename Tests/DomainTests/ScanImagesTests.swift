import Foundation
@testable import Ingest
import Recon
import Testing

/// The STXM and DPC images on their grid: no holes inside the scanned area.
@Suite struct ScanImagesTests {
    func images(_ positions: [(y: Double, x: Double)]) -> ScanImages {
        // Each position's value encodes its index, so a cell's source can be read back.
        ScanImages(positions: positions, transmission: positions.indices.map(Double.init),
                   centreOfMass: positions.map { _ in (1, 2) }, centre: (0.5, 0.5))
    }

    /// A 10x10 raster with 10% jitter once left 22 of 121 cells NaN.
    @Test func aJitteredRasterHasNoHoles() {
        for seed: UInt64 in 1...5 {
            let positions = Scan(pattern: .raster(rows: 10, columns: 10), step: 300e-9, jitter: 0.1, seed: seed).positions()
            let s = images(positions)
            #expect(s.transmissionImage.allSatisfy { !$0.isNaN }, "seed \(seed): \(s.transmissionImage.filter(\.isNaN).count) holes")
            #expect(s.dpcYImage.allSatisfy { $0 == 0.5 } && s.dpcXImage.allSatisfy { $0 == 1.5 })
        }
    }

    /// An empty cell takes its nearest position's value; a cell holding
    /// positions their mean; a cell outside the scanned area stays NaN.
    @Test func emptyCellsTakeTheNearestPositionInsideTheHullOnly() {
        let positions = Scan(pattern: .spiral(points: 200), step: 300e-9, jitter: 0, seed: 1).positions()
        let s = images(positions)
        let hull = ScatterGrid.convexHull(positions)
        var filled = 0, outside = 0
        for cell in 0..<(s.gridHeight * s.gridWidth) {
            let c = (y: s.gridOriginY + Double(cell / s.gridWidth) * s.gridStep, x: s.gridOriginX + Double(cell % s.gridWidth) * s.gridStep)
            let inCell = positions.indices.filter { i in
                Int(((positions[i].y - s.gridOriginY) / s.gridStep).rounded()) == cell / s.gridWidth
                    && Int(((positions[i].x - s.gridOriginX) / s.gridStep).rounded()) == cell % s.gridWidth
            }
            let value = s.transmissionImage[cell]
            if !inCell.isEmpty {
                #expect(value == Double(inCell.reduce(0, +)) / Double(inCell.count))
            } else if ScatterGrid.distanceOutside(c, hull: hull) <= s.gridStep / 2 {
                let distances = positions.map { ($0.y - c.y) * ($0.y - c.y) + ($0.x - c.x) * ($0.x - c.x) }
                let nearest = distances.indices.min { distances[$0] < distances[$1] }!
                #expect(value == Double(nearest), "cell \(cell)")
                filled += 1
            } else {
                #expect(value.isNaN, "cell \(cell) lies outside the scan")
                outside += 1
            }
        }
        // A spiral on a square grid: some empty cells inside, the corners outside.
        #expect(filled > 0 && outside > 0, "\(filled) filled, \(outside) outside")
    }

    @Test func aSinglePositionOrALineStillDraws() {
        #expect(images([(1e-6, 2e-6)]).transmissionImage == [0])
        let line = images((0..<5).map { (0, Double($0) * 1e-7) })
        #expect(line.gridHeight == 1 && line.transmissionImage.allSatisfy { !$0.isNaN })
    }
}
