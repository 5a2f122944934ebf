import Foundation
import Numerics
@testable import Recon
import Testing

/// A noise-free scan and the frames a single-rank engine needs.
struct EngineFixture {
    let sim: Simulation
    let grid: ObjectGrid
    let layout: TileLayout
    let frames: LocalFrames
    let m: Int

    init(config: SimulationConfig = smallConfig(scan: .raster(rows: 4, columns: 4), poisson: false)) throws {
        sim = try Simulation(config)
        m = sim.frameSize
        grid = ObjectGrid(positions: sim.points.map { ($0.y, $0.x) }, pixelSize: config.geometry.samplePixelSize, frameSize: m)
        layout = try TileLayout(corners: grid.corners, frameSize: m, objectHeight: grid.height, objectWidth: grid.width, ranks: 1)
        var amplitudes: [Float] = []
        for i in 0..<sim.frameCount {
            // The solver's own model: integer window positions.
            let c = grid.corners[i]
            let exit = sim.exitWave(object: sim.object, pixelY: Double(c.y), pixelX: Double(c.x))
            amplitudes += sim.cleanIntensity(of: exit).fftShifted(inverse: true).values.map { $0.squareRoot() }
        }
        frames = LocalFrames(indices: Array(0..<sim.frameCount), corners: grid.corners, amplitudes: amplitudes,
                             weights: [Float](repeating: 1, count: sim.frameCount))
    }

    func engine(_ options: EngineOptions, frames f: LocalFrames? = nil, mask: [Float]? = nil) throws -> PtychoEngine {
        try PtychoEngine(comm: SingleRank(), layout: layout, frames: f ?? frames, mask: mask ?? [Float](repeating: 1, count: m * m),
                         probe: sim.probe, options: options)
    }

    func nrmse(_ e: PtychoEngine) -> Double {
        let region = ObjectMetrics.illuminated(probe: sim.probe, corners: grid.corners, height: grid.height, width: grid.width)
        return ObjectMetrics.nrmse(e.regionObject.values, truth: sim.object.values, region: region)
    }
}

@Suite struct EngineTests {
    /// With the probe known, DM on consistent noise-free data drives the
    /// object error well below 1%.
    @Test func differenceMapConvergesToTheTruth() throws {
        let f = try EngineFixture()
        var options = EngineOptions()
        options.probeUpdateStart = 10_000
        options.fourierRelax = 0  // noise-free: fit exactly
        let e = try f.engine(options)
        let start = f.nrmse(e)
        for _ in 0..<150 { try e.iterate() }
        let end = f.nrmse(e)
        #expect(start > 0.05)
        #expect(end < 0.005, "NRMSE \(start) -> \(end)")
    }

    @Test func raarConvergesToo() throws {
        let f = try EngineFixture()
        var options = EngineOptions()
        options.algorithm = .raar
        options.beta = 0.8
        options.probeUpdateStart = 10_000
        options.fourierRelax = 0
        let e = try f.engine(options)
        for _ in 0..<150 { try e.iterate() }
        #expect(f.nrmse(e) < 0.01)
    }

    /// With every pixel masked, the Fourier projection keeps the model:
    /// nothing can move away from the first guess.
    @Test func maskedPixelsKeepTheModel() throws {
        let f = try EngineFixture()
        let e = try f.engine(EngineOptions(), mask: [Float](repeating: 0, count: f.m * f.m))
        let before = e.regionObject
        for _ in 0..<3 { try e.iterate() }
        let after = e.regionObject
        #expect(zip(before.values, after.values).allSatisfy { ($0 - $1).length < 1e-5 })
        #expect(e.history.allSatisfy { $0.fourierError == 0 })
    }

    /// Frames of weight 0 (not yet measured) change nothing: the result is
    /// the one from the measured frames alone.
    @Test func unmeasuredFramesWeighNothing() throws {
        let f = try EngineFixture()
        var partial = f.frames
        partial.weights = (0..<f.frames.count).map { $0 % 3 == 0 ? 0 : 1 }
        let withZeros = try f.engine(EngineOptions(), frames: partial)
        let keep = (0..<f.frames.count).filter { $0 % 3 != 0 }
        let m2 = f.m * f.m
        let measuredOnly = LocalFrames(indices: keep, corners: keep.map { f.frames.corners[$0] },
                                       amplitudes: keep.flatMap { f.frames.amplitudes[($0 * m2)..<(($0 + 1) * m2)] },
                                       weights: [Float](repeating: 1, count: keep.count))
        let alone = try f.engine(EngineOptions(), frames: measuredOnly)
        for _ in 0..<4 { try withZeros.iterate(); try alone.iterate() }
        #expect(withZeros.regionObject == alone.regionObject)
        #expect(withZeros.currentProbe == alone.currentProbe)
        #expect(withZeros.history.map(\.fourierError) == alone.history.map(\.fourierError))
    }

    @Test func raarWithBetaOneIsTheDifferenceMap() throws {
        let f = try EngineFixture()
        var raar = EngineOptions()
        raar.algorithm = .raar
        raar.beta = 1
        let a = try f.engine(EngineOptions()), b = try f.engine(raar)
        for _ in 0..<5 { try a.iterate(); try b.iterate() }
        #expect(zip(a.regionObject.values, b.regionObject.values).allSatisfy { ($0 - $1).length < 1e-4 })
    }

    /// Probe retrieval from the mean diffraction pattern with a defocus phase
    /// brings the object close to the truth.
    @Test func probeUpdateImprovesAPoorFirstProbe() throws {
        let f = try EngineFixture()
        var mean = Array2D<Float>(height: f.m, width: f.m, repeating: 0)
        for i in 0..<f.sim.frameCount {
            let frame = f.sim.cleanIntensity(at: i)
            for k in 0..<mean.count { mean.values[k] += frame.values[k] / Float(f.sim.frameCount) }
        }
        let guess = try InitialProbe.fromMeanDiffraction(mean, geometry: f.sim.config.geometry, defocus: 15e-6)
        #expect(abs(guess.totalIntensity - Double(mean.values.reduce(0, +))) / guess.totalIntensity < 1e-4)
        var options = EngineOptions()
        options.probeUpdateStart = 1
        let e = try PtychoEngine(comm: SingleRank(), layout: f.layout, frames: f.frames,
                                 mask: [Float](repeating: 1, count: f.m * f.m), probe: guess, options: options)
        let before = f.nrmse(e)
        for _ in 0..<100 { try e.iterate() }
        let after = f.nrmse(e)
        #expect(after < 0.05 && after < before / 2, "NRMSE \(before) -> \(after)")
    }

    @Test func badEngineInputsAreRejected() throws {
        let f = try EngineFixture()
        var o = EngineOptions()
        o.beta = 1.5
        #expect(throws: SimulationError.self) { try f.engine(o) }
        #expect(throws: SimulationError.self) { try f.engine(EngineOptions(), mask: [1, 1]) }
    }
}

@Suite struct ObjectMetricsTests {
    /// Shifting by a fraction of a pixel, adding a phase ramp and a complex
    /// factor leaves the registered NRMSE near zero; noise does not.
    @Test func registrationRemovesShiftRampAndFactor() throws {
        let sim = try Simulation(smallConfig())
        let truth = sim.object
        let h = truth.height, w = truth.width
        let shifted = fourierShift(truth, by: 0.3, -0.6, using: try FourierTransform(height: h, width: w))
        var changed = shifted
        for y in 0..<h { for x in 0..<w {
            let phase = 0.01 * Double(y) - 0.02 * Double(x) + 1.0
            changed[y, x] = shifted[y, x] * Complex(Float(0.8 * cos(phase)), Float(0.8 * sin(phase)))
        } }
        let region = (0..<(h * w)).map { ($0 / w) > 20 && ($0 / w) < h - 20 && ($0 % w) > 20 && ($0 % w) < w - 20 }
        let plain = ObjectMetrics.nrmse(changed.values, truth: truth.values, region: region)
        let c = try ObjectMetrics.compare(changed, truth: truth, region: region)
        #expect(plain > 0.1)
        #expect(c.nrmse < 0.01, "\(c)")
        #expect(abs(c.shiftY + 0.3) < 0.1 && abs(c.shiftX - 0.6) < 0.1)
    }
}
