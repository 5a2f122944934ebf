import Foundation

/// The low-resolution images a scan gives before any reconstruction: the
/// transmitted photons per position (STXM) and the shift of each pattern's
/// centre of mass from the diffraction centre (differential phase
/// contrast), per position and binned onto a regular grid at the scan's
/// typical step.
public struct ScanImages: Sendable {
    public var transmission: [Double]
    public var centreOfMassY: [Double]
    public var centreOfMassX: [Double]
    /// (y, x) of the diffraction centre, image pixels.
    public var centre: [Double]
    public var gridStep: Double
    public var gridOriginY: Double
    public var gridOriginX: Double
    public var gridHeight: Int
    public var gridWidth: Int
    /// Row-major grid images; NaN where no position falls.
    public var transmissionImage: [Double]
    public var dpcYImage: [Double]
    public var dpcXImage: [Double]

    /// `positions` in m, one per frame, with that frame's values.
    public init(positions: [(y: Double, x: Double)], transmission: [Double], centreOfMass: [(y: Double, x: Double)],
                centre: (y: Double, x: Double)) {
        precondition(positions.count == transmission.count && positions.count == centreOfMass.count)
        self.transmission = transmission
        centreOfMassY = centreOfMass.map(\.y)
        centreOfMassX = centreOfMass.map(\.x)
        self.centre = [centre.y, centre.x]
        let ys = positions.map(\.y), xs = positions.map(\.x)
        let minY = ys.min() ?? 0, minX = xs.min() ?? 0
        let extentY = (ys.max() ?? 0) - minY, extentX = (xs.max() ?? 0) - minX
        // Typical spacing of positions spread over the scanned area.
        let area = max(extentY, 1e-12) * max(extentX, 1e-12)
        let step = positions.count > 1 ? max((area / Double(positions.count)).squareRoot(), 1e-12) : 1
        gridStep = step
        gridOriginY = minY
        gridOriginX = minX
        gridHeight = Int((extentY / step).rounded()) + 1
        gridWidth = Int((extentX / step).rounded()) + 1
        var sums = [[Double]](repeating: [Double](repeating: 0, count: gridHeight * gridWidth), count: 3)
        var counts = [Int](repeating: 0, count: gridHeight * gridWidth)
        for (i, p) in positions.enumerated() {
            let gy = min(gridHeight - 1, Int(((p.y - minY) / step).rounded()))
            let gx = min(gridWidth - 1, Int(((p.x - minX) / step).rounded()))
            let cell = gy * gridWidth + gx
            sums[0][cell] += transmission[i]
            sums[1][cell] += centreOfMass[i].y - centre.y
            sums[2][cell] += centreOfMass[i].x - centre.x
            counts[cell] += 1
        }
        func image(_ k: Int) -> [Double] { counts.indices.map { counts[$0] > 0 ? sums[k][$0] / Double(counts[$0]) : .nan } }
        transmissionImage = image(0)
        dpcYImage = image(1)
        dpcXImage = image(2)
    }
}

/// The diffraction centre of a pattern: the centre of mass over pixels whose
/// point reflection through the current estimate is also valid, iterated,
/// so a masked channel or beamstop on one side does not drag it.
public enum DiffractionCentre {
    public static func find(_ image: [Float], height: Int, width: Int, mask: [UInt32],
                            start: (y: Double, x: Double), iterations: Int = 8) -> (y: Double, x: Double)? {
        precondition(image.count == height * width && mask.count == image.count)
        var c = start
        for _ in 0..<iterations {
            var s = 0.0, sy = 0.0, sx = 0.0
            let ry = Int((2 * c.y).rounded()), rx = Int((2 * c.x).rounded())
            for y in 0..<height {
                let my = ry - y
                guard my >= 0, my < height else { continue }
                for x in 0..<width {
                    let mx = rx - x
                    guard mx >= 0, mx < width, mask[y * width + x] == 0, mask[my * width + mx] == 0 else { continue }
                    let v = Double(image[y * width + x])
                    s += v; sy += v * Double(y); sx += v * Double(x)
                }
            }
            guard s > 0 else { return nil }
            let next = (y: sy / s, x: sx / s)
            // The symmetric window only moves by rounding steps: stop when settled.
            if abs(next.y - c.y) < 1e-3 && abs(next.x - c.x) < 1e-3 { return next }
            c = next
        }
        return c
    }
}
