import Foundation

/// Checks of a scan's description, shared by files and live `start`
/// messages and made before anything is sized from it: each physical value
/// against what an instrument can have, naming the likely unit mistake,
/// and the memory the solve would take on each rank against a budget.
public enum ScanLimits {
    /// 10 eV to 1 MeV, in J.
    public static let energy: ClosedRange<Double> = 1.6e-18...1.6e-13
    /// Sample to detector, in m.
    public static let distance: ClosedRange<Double> = 1e-3...100
    /// Detector pixel pitch, in m.
    public static let pixelSize: ClosedRange<Double> = 1e-7...1e-2
    /// The farthest a probe position may lie from the origin, in m (a stage's travel).
    public static let stageTravel = 0.1
    /// The largest object side in pixels the solver takes.
    public static let objectSide = 1 << 20
    /// The largest detector side in pixels.
    public static let frameSide = 1 << 13

    /// A problem with a photon energy in J, or nil.
    public static func energyProblem(_ e: Double) -> String? {
        guard e.isFinite, e > 0 else { return String(format: "%g is not a positive number of joules", e) }
        if e > energy.upperBound {
            let unit = e >= 10 ? "eV" : "keV", joules = e * (e >= 10 ? 1 : 1000) * PhysicalConstants.electronVolt
            return String(format: "%g J is far above any X-ray photon (at most 1 MeV, 1.6e-13 J): is it in %@? (%g %@ is %.4g J; photon energies are in joules)",
                          e, unit, e, unit, joules)
        }
        if e < energy.lowerBound { return String(format: "%g J is below 10 eV (1.6e-18 J): photon energies are in joules", e) }
        return nil
    }

    public static func distanceProblem(_ d: Double) -> String? {
        guard d.isFinite, d > 0 else { return String(format: "%g is not a positive number of metres", d) }
        if d > distance.upperBound { return String(format: "%g m is over 100 m: is it in mm? Distances are in metres", d) }
        if d < distance.lowerBound { return String(format: "%g m is under 1 mm: distances are in metres", d) }
        return nil
    }

    public static func pixelSizeProblem(_ p: Double) -> String? {
        guard p.isFinite, p > 0 else { return String(format: "%g is not a positive number of metres", p) }
        if p > pixelSize.upperBound { return String(format: "%g m is over 1 cm: is it in µm? Pixel sizes are in metres", p) }
        if p < pixelSize.lowerBound { return String(format: "%g m is under 0.1 µm: pixel sizes are in metres", p) }
        return nil
    }

    /// The first position that is not finite or beyond any stage's travel, or nil.
    public static func positionsProblem(_ positions: [(y: Double, x: Double)]) -> String? {
        for (i, p) in positions.enumerated() {
            guard p.y.isFinite, p.x.isFinite else { return "position \(i) is not finite" }
            if max(abs(p.y), abs(p.x)) > stageTravel {
                return String(format: "position %d is (%g, %g) m, beyond any stage's %g m travel: are the positions in µm or mm? They are in metres",
                              i, p.y, p.x, stageTravel)
            }
        }
        return nil
    }
}

/// What one scan's solve holds on the busiest rank, estimated from its
/// description alone (no grid, no tiles made), so a scan that cannot fit
/// is refused before anything is allocated.
public struct ScanCost: Sendable {
    public var frames: Int
    public var frameSize: Int
    /// The object grid's sides in pixels, as `ObjectGrid` will make them (fractional: not yet rounded).
    public var objectHeight: Double
    public var objectWidth: Double
    public var ranks: Int
    /// Raw detector pixels per frame (dark statistics and cleaning buffers), 0 for clean frames.
    public var rawPixels: Int
    /// Complex values the engines keep per frame pixel (`EngineRegistry.peakFrameValues`).
    public var engineFrameValues: Int

    public init(frames: Int, frameSize: Int, positions: [(y: Double, x: Double)], samplePixelSize: Double, ranks: Int, rawPixels: Int = 0,
                engineFrameValues: Int = 1) {
        self.frames = frames
        self.engineFrameValues = max(0, engineFrameValues)
        self.frameSize = frameSize
        self.ranks = max(1, ranks)
        self.rawPixels = rawPixels
        func extent(_ v: [Double]) -> Double { ((v.max() ?? 0) - (v.min() ?? 0)) / samplePixelSize }
        let pad = Double(frameSize) + 2 * ObjectGrid.margin + 1
        objectHeight = extent(positions.map(\.y)) + pad
        objectWidth = extent(positions.map(\.x)) + pad
    }

    /// Bytes on the busiest rank: each owned frame's amplitudes (and their
    /// copy while the solver starts) and the engines' values per frame
    /// (DM's exit wave; none for rPIE), the tile's region of
    /// the object with its update sums, every rank's per-frame records, and
    /// for raw frames the dark statistics and cleaning buffers.
    public var bytesPerRank: Double {
        let m2 = Double(frameSize * frameSize)
        let ownFrames = (Double(frames) / Double(ranks)).rounded(.up)
        let rows = max(1, Int(Double(ranks).squareRoot())), columns = (ranks + rows - 1) / rows
        let region = (objectHeight / Double(rows) + Double(frameSize)) * (objectWidth / Double(columns) + Double(frameSize))
        return ownFrames * m2 * Double(8 + 8 * engineFrameValues) + region * 40 + Double(frames) * 64 + Double(rawPixels) * 64
    }

    /// Why the positions cannot belong to these frames, or nil: they span
    /// an object the frames could not cover even without overlapping (under
    /// 5% of it; a ptychographic scan overlaps, covering it more than once),
    /// which is what positions, an energy or a distance in the wrong unit give.
    public var sparseProblem: String? {
        let frameArea = Double(frames) * Double(frameSize * frameSize)
        let objectArea = objectHeight * objectWidth
        guard max(objectHeight, objectWidth) > Double(ScanLimits.objectSide) || frameArea < 0.05 * objectArea else { return nil }
        return String(format: "the positions span an object of %.3g x %.3g pixels, which the %d frames of %dx%d cover only %.2g%% of: are the positions in mm or µm (they are in metres), or the energy or distance in another unit?",
                      objectHeight, objectWidth, frames, frameSize, frameSize, 100 * frameArea / objectArea)
    }

    /// Why the scan cannot be solved (positions that cannot belong to the
    /// frames, or more than `budget` bytes per rank), or nil.
    public func problem(budgetBytes: Double) -> String? {
        if let sparse = sparseProblem { return sparse }
        let need = bytesPerRank
        guard need <= budgetBytes else {
            return String(format: "the solve needs about %.3g GB on the busiest of %d ranks (%d frames of %dx%d, object %.0fx%.0f pixels), over the budget of %.3g GB per rank (--max-memory-gb): use more ranks or a smaller scan",
                          need / 1e9, ranks, frames, frameSize, frameSize, objectHeight, objectWidth, budgetBytes / 1e9)
        }
        return nil
    }

    /// The default budget per rank: 80% of this host's memory shared by its ranks.
    public static func defaultBudgetBytes(ranksOnHost: Int) -> Double {
        Double(ProcessInfo.processInfo.physicalMemory) * 0.8 / Double(max(1, ranksOnHost))
    }
}
