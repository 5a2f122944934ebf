import Foundation
import Recon

/// What `inspect` reports about a CXI scan.
public struct CXISummary: Sendable {
    public var frames: Int
    public var frameShape: [Int]
    public var dataType: String
    public var energyEV: Double
    public var wavelength: Double
    public var distance: Double
    public var pixelSize: (x: Double, y: Double)
    /// Sample-plane pixel for the stored frame width, m.
    public var samplePixelSize: Double
    /// Sum per frame (photons, or ADU for raw frames): min, mean, max.
    public var frameSums: (min: Double, mean: Double, max: Double)
    public var extentX: (min: Double, max: Double)
    public var extentY: (min: Double, max: Double)
    /// Median distance to the nearest other position, m.
    public var medianStep: Double
    public var maskedPixels: Int
    public var darkFrames: Int
    public var raw: Bool
    public var hasIllumination: Bool
    public var hasTruth: Bool

    public init(_ reader: CXIReader, batch: Int = 16) throws {
        let s = reader.scan
        frames = reader.frameCount
        frameShape = [s.frameHeight, s.frameWidth]
        dataType = reader.dataType.description
        energyEV = s.energy / PhysicalConstants.electronVolt
        wavelength = PhysicalConstants.wavelength(energy: s.energy)
        distance = s.distance
        pixelSize = (s.xPixelSize, s.yPixelSize)
        samplePixelSize = wavelength * s.distance / (Double(s.readout?.columns ?? s.frameWidth) * s.xPixelSize)
        var lo = Double.infinity, hi = -Double.infinity, total = 0.0
        var first = 0
        let perFrame = s.frameHeight * s.frameWidth
        while first < frames {
            let count = min(batch, frames - first)
            let values = try reader.readFrames(first: first, count: count)
            for f in 0..<count {
                var sum = 0.0
                for v in values[(f * perFrame)..<((f + 1) * perFrame)] { sum += Double(v) }
                lo = min(lo, sum)
                hi = max(hi, sum)
                total += sum
            }
            first += count
        }
        frameSums = (lo, total / Double(max(1, frames)), hi)
        let xs = s.positions.map(\.x), ys = s.positions.map(\.y)
        extentX = (xs.min() ?? 0, xs.max() ?? 0)
        extentY = (ys.min() ?? 0, ys.max() ?? 0)
        medianStep = CXISummary.medianNearestNeighbour(s.positions)
        maskedPixels = s.mask?.filter { $0 != 0 }.count ?? 0
        darkFrames = s.darkFrames
        raw = s.readout != nil
        hasIllumination = s.illumination != nil
        hasTruth = reader.hasTruth
    }

    static func medianNearestNeighbour(_ p: [(y: Double, x: Double)]) -> Double {
        guard p.count > 1 else { return 0 }
        // Sorting by x bounds the search; scans are at most ~10^5 points.
        let sorted = p.sorted { $0.x < $1.x }
        var distances: [Double] = []
        distances.reserveCapacity(sorted.count)
        for i in sorted.indices {
            var best = Double.infinity
            var j = i - 1
            while j >= 0 && sorted[i].x - sorted[j].x < best {
                best = min(best, hypot(sorted[i].x - sorted[j].x, sorted[i].y - sorted[j].y)); j -= 1
            }
            j = i + 1
            while j < sorted.count && sorted[j].x - sorted[i].x < best {
                best = min(best, hypot(sorted[i].x - sorted[j].x, sorted[i].y - sorted[j].y)); j += 1
            }
            distances.append(best)
        }
        distances.sort()
        return distances[distances.count / 2]
    }
}

/// The scan drawn in characters, so a person can check the translation
/// convention: the first position is 'S', the last 'E', y grows downwards.
public enum ScanPlot {
    public static func ascii(_ positions: [(y: Double, x: Double)], columns: Int = 60, rows: Int = 20) -> [String] {
        guard let first = positions.first, let last = positions.last else { return [] }
        let xs = positions.map(\.x), ys = positions.map(\.y)
        let (x0, x1, y0, y1) = (xs.min()!, xs.max()!, ys.min()!, ys.max()!)
        var grid = [[Character]](repeating: [Character](repeating: " ", count: columns), count: rows)
        func cell(_ p: (y: Double, x: Double)) -> (Int, Int) {
            let c = x1 > x0 ? Int((p.x - x0) / (x1 - x0) * Double(columns - 1)) : columns / 2
            let r = y1 > y0 ? Int((p.y - y0) / (y1 - y0) * Double(rows - 1)) : rows / 2
            return (r, c)
        }
        for p in positions {
            let (r, c) = cell(p)
            grid[r][c] = grid[r][c] == " " ? "." : ":"
        }
        let (sr, sc) = cell(first), (er, ec) = cell(last)
        grid[sr][sc] = "S"
        grid[er][ec] = "E"
        return grid.map { "|" + String($0) + "|" }
    }
}
