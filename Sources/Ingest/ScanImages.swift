import Foundation
import Recon

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
    /// Row-major grid images (see ScatterGrid): NaN only outside the scanned area.
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
        let grid = ScatterGrid(positions: positions, step: step, originY: minY, originX: minX, height: gridHeight, width: gridWidth)
        transmissionImage = grid.image(transmission)
        dpcYImage = grid.image(centreOfMass.map { $0.y - centre.y })
        dpcXImage = grid.image(centreOfMass.map { $0.x - centre.x })
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

/// The diffraction centre from a scan's first frames, cleaned without
/// beamstop, crop or resampling and summed (over ranks too, by the caller
/// between `add` and `centre`): their symmetric centre of mass, in
/// detector image pixels. The offline and the live paths share it.
public final class CentreFinder {
    public let cleaner: FrameCleaner
    public private(set) var sum: [Float]

    /// The cleaning options a centre search uses.
    public static func options(_ o: PreprocessOptions) -> PreprocessOptions {
        var probing = o
        probing.beamstopRadius = nil
        probing.cropSize = nil
        probing.outputSize = nil
        return probing
    }

    public init(layout: ReadoutLayout, gain: Double?, dark: DarkStatistics?, fileMask: [UInt32]?, options: PreprocessOptions) throws {
        cleaner = try FrameCleaner(layout: layout, gain: gain, dark: dark, fileMask: fileMask,
                                   centre: (Double(layout.rows) / 2, Double(layout.columns) / 2), options: Self.options(options))
        sum = [Float](repeating: 0, count: cleaner.outputSize * cleaner.outputSize)
    }

    public func add(raw: [Float]) throws {
        let frame = try cleaner.clean(raw: raw)
        for i in 0..<sum.count { sum[i] += frame.photons[i] }
    }

    /// The summed images of all ranks, in place (`combine` is the caller's reduction).
    public func combine(_ reduce: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        try sum.withUnsafeMutableBufferPointer { try reduce($0) }
    }

    /// nil when the frames hold no photons after cleaning.
    public func centre() -> (y: Double, x: Double)? {
        let side = cleaner.outputSize, origin = cleaner.cropOrigin
        guard let found = DiffractionCentre.find(sum, height: side, width: side, mask: cleaner.outputMask,
                                                 start: (Double(side) / 2, Double(side) / 2)) else { return nil }
        return (found.y + Double(origin.y), found.x + Double(origin.x))
    }
}
