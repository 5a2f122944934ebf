import Foundation
import Parameters
import Recon
import Testing

@Suite struct ScanPatternTests {
    func nearest(_ p: [(y: Double, x: Double)]) -> [Double] {
        p.indices.map { i in p.indices.filter { $0 != i }.map { hypot(p[i].x - p[$0].x, p[i].y - p[$0].y) }.min()! }
    }

    @Test func rasterIsAGridWithTheStep() {
        let p = Scan(pattern: .raster(rows: 3, columns: 4), step: 1e-7).positions()
        #expect(p.count == 12)
        #expect(nearest(p).allSatisfy { abs($0 - 1e-7) < 1e-15 })
        #expect(abs(p.map(\.x).reduce(0, +)) < 1e-15 && abs(p.map(\.y).reduce(0, +)) < 1e-15)  // centred
        #expect(p[1].x > p[0].x && p[4].y > p[0].y)  // row-major, x fastest
    }

    @Test(arguments: [ScanPattern.spiral(points: 400), .rounds(points: 400)])
    func spiralAndRoundsSpaceTheirPointsByAboutOneStep(pattern: ScanPattern) {
        let p = Scan(pattern: pattern, step: 1).positions()
        #expect(p.count == 400)
        let d = nearest(p).sorted()
        let median = d[d.count / 2]
        #expect(median > 0.8 && median < 1.25, "median nearest neighbour \(median)")
        #expect(d[0] > 0.3)  // no two points on top of each other
    }

    @Test func jitterStaysWithinItsBoundAndFollowsTheSeed() {
        let plain = Scan(pattern: .raster(rows: 5, columns: 5), step: 1).positions()
        let a = Scan(pattern: .raster(rows: 5, columns: 5), step: 1, jitter: 0.2, seed: 9).positions()
        let b = Scan(pattern: .raster(rows: 5, columns: 5), step: 1, jitter: 0.2, seed: 9).positions()
        #expect(zip(a, b).allSatisfy { $0.x == $1.x && $0.y == $1.y })
        #expect(zip(a, plain).allSatisfy { abs($0.x - $1.x) <= 0.2 && abs($0.y - $1.y) <= 0.2 })
        #expect(zip(a, plain).contains { $0.x != $1.x })
    }

    @Test func parsing() throws {
        #expect(try ScanPattern(parsing: "40x40") == .raster(rows: 40, columns: 40))
        #expect(try ScanPattern(parsing: "raster:2x3") == .raster(rows: 2, columns: 3))
        #expect(try ScanPattern(parsing: "spiral:400") == .spiral(points: 400))
        #expect(try ScanPattern(parsing: "ROUNDS:7") == .rounds(points: 7))
        for bad in ["", "0x4", "spiral:-1", "hexagon:9", "4x", "raster:axb"] {
            let e = try #require(throws: SimulationError.self) { try ScanPattern(parsing: bad) }
            #expect(e.description.contains("'\(bad)'"))
        }
    }
}
