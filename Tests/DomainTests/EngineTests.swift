import Foundation
import Numerics
@testable import Engines
@testable import Recon
import Simulator
import Testing

/// A noise-free scan and the frames a single-rank engine needs.
struct EngineFixture {
    let sim: Simulation
    let grid: ObjectGrid
    let layout: TileLayout
    let frames: LocalFrames
    let m: Int

    /// `exactPositions`: frames from the true sub-pixel positions (with the
    /// offsets the solver needs), with Poisson noise if the config asks;
    /// else noise-free frames from positions rounded to whole pixels.
    init(config: SimulationConfig = smallConfig(scan: .raster(rows: 4, columns: 4), poisson: false),
         exactPositions: Bool = false) throws {
        sim = try Simulation(config)
        m = sim.frameSize
        grid = ObjectGrid(positions: sim.points.map { ($0.y, $0.x) }, pixelSize: config.geometry.samplePixelSize, frameSize: m)
        layout = try TileLayout(corners: grid.corners, frameSize: m, objectHeight: grid.height, objectWidth: grid.width, ranks: 1)
        var amplitudes: [Float] = []
        for i in 0..<sim.frameCount {
            let c = grid.corners[i]
            let intensity = exactPositions
                ? sim.frame(i).photons
                : sim.cleanIntensity(of: sim.exitWave(object: sim.object, pixelY: Double(c.y), pixelX: Double(c.x)))
            amplitudes += intensity.fftShifted(inverse: true).values.map { $0.squareRoot() }
        }
        frames = LocalFrames(indices: Array(0..<sim.frameCount), corners: grid.corners,
                             offsets: exactPositions ? grid.offsets : nil, amplitudes: amplitudes,
                             weights: [Float](repeating: 1, count: sim.frameCount))
    }

    func engine(_ options: EngineOptions, frames f: LocalFrames? = nil, mask: [Float]? = nil) throws -> any ReconstructionEngine {
        try EngineRegistry.make(comm: SingleRank(), layout: layout, frames: f ?? frames, mask: mask ?? [Float](repeating: 1, count: m * m),
                         probe: sim.probe, options: options)
    }

    func nrmse(_ e: any ReconstructionEngine) -> Double {
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
        options.powerBound = .none  // noise-free: fit exactly
        let e = try f.engine(options)
        let start = f.nrmse(e)
        for _ in 0..<150 { try e.iterate() }
        let end = f.nrmse(e)
        #expect(start > 0.05)
        #expect(end < 0.005, "NRMSE \(start) -> \(end)")
    }

    /// Frames measured at sub-pixel positions: modelling the offsets by
    /// shifted probes converges to the truth; rounding the positions cannot.
    @Test func subPixelPositionsAreModelled() throws {
        let f = try EngineFixture(config: smallConfig(scan: .spiral(points: 30), poisson: false), exactPositions: true)
        #expect(f.frames.offsets.contains { abs($0.y - 0.5) < 0.3 || abs($0.x - 0.5) < 0.3 })
        var options = EngineOptions()
        options.probeUpdateStart = 10_000
        options.powerBound = .none
        var results: [Int: (nrmse: Double, fourier: Double)] = [:]
        for steps in [0, 8, 64] {
            options.subpixelSteps = steps
            let e = try f.engine(options)
            for _ in 0..<150 { try e.iterate() }
            results[steps] = (f.nrmse(e), e.history.last!.fourierError)
        }
        #expect(results[64]!.nrmse < 0.005, "\(results)")
        #expect(results[0]!.nrmse > 3 * results[64]!.nrmse, "\(results)")
    }

    /// `bench recon`'s FFT baseline repeats the probe step's single-frame
    /// transforms by the engine's own count: it must match what an
    /// iteration runs, with sub-pixel classes and without.
    @Test func probeStepTransformsAreCountedAsRun() throws {
        let f = try EngineFixture(config: smallConfig(scan: .spiral(points: 30), poisson: false), exactPositions: true)
        for steps in [0, 4] {
            var options = EngineOptions()
            options.probeUpdateStart = 0
            options.subpixelSteps = steps
            let e = try f.engine(options)
            e.profiling = true
            for _ in 0..<2 { try e.iterate() }
            let expected = e.probeStepTransforms
            #expect(e.profile.probeStepTransforms == 2 * (expected.forward + expected.inverse))
            #expect(steps == 0 ? expected == (0, 0) : expected.forward > 1 && expected.inverse > 1, "\(expected)")
        }
    }

    /// On Poisson data the bound that follows the noise fits the signal and
    /// not the noise, where PtyPy's fixed fraction does neither as well;
    /// both runs start from the same data-derived probe and update it.
    @Test func poissonPowerBoundBeatsAFixedFractionOnNoisyData() throws {
        var config = smallConfig(scan: .spiral(points: 60), poisson: true)
        config.photonsPerFrame = 1e6
        let f = try EngineFixture(config: config, exactPositions: true)
        var mean = Array2D<Float>(height: f.m, width: f.m, repeating: 0)
        for i in 0..<f.sim.frameCount {
            let frame = f.sim.frame(i).photons
            for k in 0..<mean.count { mean.values[k] += frame.values[k] / Float(f.sim.frameCount) }
        }
        let guess = try InitialProbe.fromMeanDiffraction(mean, geometry: f.sim.config.geometry, defocus: 15e-6)
        var errors: [String: Double] = [:]
        for bound in [PowerBound.poisson(1), .relative(0.05)] {
            var options = EngineOptions()
            options.powerBound = bound
            let e = try EngineRegistry.make(comm: SingleRank(), layout: f.layout, frames: f.frames,
                                     mask: [Float](repeating: 1, count: f.m * f.m), probe: guess, options: options)
            for _ in 0..<100 { try e.iterate() }
            errors[bound.description] = f.nrmse(e)
            #expect(e.history.allSatisfy { $0.fourierError.isFinite })
        }
        #expect(errors["poisson:1.0"]! < 0.06, "\(errors)")
        #expect(errors["poisson:1.0"]! < 0.8 * errors["relax:0.05"]!, "\(errors)")
    }

    @Test func expectedPoissonMisfitMatchesItsLimits() {
        let v = ExpectedPoissonMisfit()
        #expect(v(0) == 0)
        #expect(abs(v(0.01) - 0.0181) < 2e-4)  // about 2 lambda when counts are rare
        #expect(abs(v(0.0624) - v(0.0626)) < 1e-3)
        #expect(abs(v(1) - 0.4536) < 1e-3)
        #expect(abs(v(63.9) - v(64.1)) < 1e-4)  // table meets the asymptote
        #expect(abs(v(1e4) - 0.25) < 1e-4)
    }

    @Test func powerBoundsParse() {
        #expect(PowerBound(parsing: "none") == PowerBound.none)
        #expect(PowerBound(parsing: "relax:0.05") == .relative(0.05))
        #expect(PowerBound(parsing: "Poisson:2") == .poisson(2))
        #expect(PowerBound(parsing: "poisson") == nil)
        #expect(PowerBound(parsing: "fast") == nil)
        var o = EngineOptions()
        o.powerBound = .poisson(-1)
        #expect(o.problems().contains { $0.contains("Poisson power bound") })
        // Options and their declared parameters agree: what one takes, the other takes.
        var zero = EngineOptions()
        zero.probeRegularization = 0
        zero.objectRegularization = 0
        #expect(zero.problems().isEmpty)
        var far = EngineOptions()
        far.iterations = 1_000_001
        #expect(far.problems() == ["iterations: 1000001 is out of range 0...1000000"])
    }

    @Test func raarConvergesToo() throws {
        let f = try EngineFixture()
        var options = EngineOptions()
        options.algorithm = "raar"
        options.beta = 0.8
        options.probeUpdateStart = 10_000
        options.powerBound = .none
        let e = try f.engine(options)
        for _ in 0..<150 { try e.iterate() }
        #expect(f.nrmse(e) < 0.01)
    }

    /// rPIE on noise-free data, the probe known: a few mini-batches per
    /// epoch reach DM's accuracy in fewer epochs than DM needs iterations.
    @Test func rpieConvergesToTheTruth() throws {
        let f = try EngineFixture()
        var options = EngineOptions()
        options.algorithm = "rpie"
        options.minibatch = 4
        options.probeUpdateStart = 10_000
        options.powerBound = .none
        let e = try f.engine(options)
        let start = f.nrmse(e)
        for _ in 0..<60 { try e.iterate() }
        let end = f.nrmse(e)
        #expect(end < 0.005 && end < start / 10, "NRMSE \(start) -> \(end)")
        let errors = e.history.map(\.fourierError)
        #expect(errors.last! < errors.first! / 100, "\(errors)")
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

    /// Frames placed one by one into a running engine, in any order, take
    /// the places they would have had from the start (the engine visits
    /// frames in one fixed order), so the iterations are the same bit for bit.
    @Test func framesPlacedInAnyOrderEqualFramesGivenAtTheStart() throws {
        let f = try EngineFixture()
        let m2 = f.m * f.m
        var empty = f.frames
        empty.amplitudes = [Float](repeating: 0, count: f.frames.amplitudes.count)
        empty.weights = [Float](repeating: 0, count: f.frames.count)
        let placed = try f.engine(EngineOptions(), frames: empty)
        var rng = SeededRandom(seed: 7, stream: 3)
        let order = Array(0..<f.frames.count).shuffled(using: &rng)
        for j in order + order.prefix(3) {  // placing a frame again changes nothing
            f.frames.amplitudes[(j * m2)..<((j + 1) * m2)].withUnsafeBufferPointer { placed.place(j, amplitudes: $0) }
        }
        let given = try f.engine(EngineOptions())
        #expect(placed.activeFrames == given.activeFrames)
        for _ in 0..<3 { try placed.iterate(); try given.iterate() }
        #expect(placed.regionObject == given.regionObject)
        #expect(placed.history.map(\.fourierError) == given.history.map(\.fourierError))
    }

    @Test func raarWithBetaOneIsTheDifferenceMap() throws {
        let f = try EngineFixture()
        var raar = EngineOptions()
        raar.algorithm = "raar"
        raar.beta = 1
        let a = try f.engine(EngineOptions()), b = try f.engine(raar)
        for _ in 0..<5 { try a.iterate(); try b.iterate() }
        // The second projection's coefficient is 0: the same update, bit for bit.
        #expect(a.regionObject == b.regionObject)
        #expect(a.currentProbe == b.currentProbe)
    }

    /// Probe retrieval from the mean diffraction pattern with a defocus phase
    /// brings the object close to the truth.
    @Test(arguments: ["dm", "rpie"])
    func probeUpdateImprovesAPoorFirstProbe(engine: String) throws {
        let f = try EngineFixture()
        var mean = Array2D<Float>(height: f.m, width: f.m, repeating: 0)
        for i in 0..<f.sim.frameCount {
            let frame = f.sim.cleanIntensity(at: i)
            for k in 0..<mean.count { mean.values[k] += frame.values[k] / Float(f.sim.frameCount) }
        }
        let guess = try InitialProbe.fromMeanDiffraction(mean, geometry: f.sim.config.geometry, defocus: 15e-6)
        #expect(abs(guess.totalIntensity - Double(mean.values.reduce(0, +))) / guess.totalIntensity < 1e-4)
        var options = EngineOptions()
        options.algorithm = engine
        options.minibatch = 4
        options.probeUpdateStart = 1
        options.powerBound = .none  // noise-free data
        let e = try EngineRegistry.make(comm: SingleRank(), layout: f.layout, frames: f.frames,
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

    /// The registry is the one list of engines: the engine choice lists
    /// every registered engine, each parameter is declared once, and an
    /// unknown engine is refused naming the known ones.
    @Test func theRegistryIsTheOneListOfEngines() throws {
        let names = EngineOptions.parameters.map(\.name)
        #expect(Set(names).count == names.count, "\(names)")
        let algorithm = try #require(EngineOptions.parameters.first { $0.name == "algorithm" })
        #expect(algorithm.kind == .choice(EngineRegistry.names))
        for kind in EngineRegistry.standard {
            for p in kind.parameters { #expect(names.contains(p.name), "\(kind.name): \(p.name)") }
        }
        var unknown = EngineOptions()
        unknown.algorithm = "ml2"
        #expect(unknown.problems().count == 1 && unknown.problems()[0].hasPrefix("algorithm: 'ml2' is not one of 'dm', 'raar', 'ml', 'rpie'"))
        let f = try EngineFixture()
        #expect(throws: SimulationError.invalid("no engine is named 'ml2'; known: dm, raar, ml, rpie")) { try f.engine(unknown) }
    }

    /// A live `set` switches between DM and RAAR between iterations; the
    /// switch equals an engine run that way from the start, and a bad
    /// setting leaves the engine as it was.
    @Test func adjustingBetweenIterationsTakesEffectAtTheNext() throws {
        let f = try EngineFixture()
        var raar = EngineOptions()
        raar.algorithm = "raar"
        raar.beta = 0.7
        let switched = try f.engine(EngineOptions()), reference = try f.engine(EngineOptions())
        for _ in 0..<2 { try switched.iterate(); try reference.iterate() }
        try switched.adjust(raar)
        var bad = raar
        bad.beta = 3
        #expect(throws: SimulationError.self) { try switched.adjust(bad) }
        #expect(switched.name == "raar" && switched.options.beta == 0.7)
        // The reference takes RAAR's state over from DM's through the same model state and exit waves.
        let restarted = try f.engine(raar)
        try restarted.model.restore(object: reference.regionObject.values, probe: reference.currentProbe.values, history: reference.history)
        let saved = EngineState(parts: Dictionary(uniqueKeysWithValues: reference.state.map { ($0.name, Array($0.values)) }),
                                numbers: reference.stateNumbers)
        try restarted.restore(state: saved)
        for _ in 0..<3 { try switched.iterate(); try restarted.iterate() }
        #expect(switched.regionObject == restarted.regionObject)
        #expect(switched.currentProbe == restarted.currentProbe)
        #expect(switched.history.map(\.fourierError) == restarted.history.map(\.fourierError))
    }

    /// ML alone, from a flat object and the known probe, fits noise-free
    /// data: the object error falls well below its start.
    @Test func maximumLikelihoodConvergesFromTheFirstGuess() throws {
        let f = try EngineFixture()
        var options = EngineOptions()
        options.algorithm = "ml"
        options.probeUpdateStart = 10_000
        let e = try f.engine(options)
        let before = f.nrmse(e)
        for _ in 0..<60 { try e.iterate() }
        let after = f.nrmse(e)
        #expect(after < 0.05 && after < before / 4, "NRMSE \(before) -> \(after)")
        let errors = e.history.map(\.fourierError)
        #expect(errors.last! < errors.first! / 10, "\(errors)")
    }

    /// A sequence hands the model from one engine to the next: DM for a
    /// few iterations, then ML on the same object and probe, counting on.
    @Test func aSequenceHandsTheModelOn() throws {
        let f = try EngineFixture()
        var options = EngineOptions()
        options.engines = [EngineRun(name: "dm", iterations: 3), EngineRun(name: "ml", iterations: 2)]
        #expect(options.problems().isEmpty && options.totalIterations == 5)
        #expect(options.running(at: 2).algorithm == "dm" && options.running(at: 3).algorithm == "ml")
        var e = try f.engine(options.running(at: 0))
        for i in 0..<options.totalIterations {
            e = try EngineRegistry.continuing(e, with: options.running(at: i))
            try e.iterate()
        }
        #expect(e.name == "ml" && e.iteration == 5 && e.history.count == 5)
        var bad = EngineOptions()
        bad.engines = [EngineRun(name: "dm", iterations: 3), EngineRun(name: "ml2", iterations: 2)]
        #expect(bad.problems() == ["engines: no engine is named 'ml2'; known: dm, raar, ml, rpie"])
        #expect(EngineRun.parse("dm:100, ml:50") == [EngineRun(name: "dm", iterations: 100), EngineRun(name: "ml", iterations: 50)])
        #expect(EngineRun.parse("dm100") == nil && EngineRun.parse("") == [])
    }

    /// The memory check before allocation counts what each engine keeps
    /// per frame, and both engines at a handover to another type.
    @Test func theMemoryCheckCountsTheEnginesPerFrameValues() throws {
        func peak(_ text: String) -> Int {
            var o = EngineOptions()
            o.engines = EngineRun.parse(text)!
            return EngineRegistry.peakFrameValues(o)
        }
        #expect(EngineRegistry.peakFrameValues(EngineOptions()) == 1)
        #expect(peak("dm:5,raar:5") == 1 && peak("ml:5") == 2 && peak("dm:5,ml:5") == 3 && peak("ml:5,dm:5,raar:5") == 3)
        #expect(peak("rpie:5") == 0 && peak("dm:5,rpie:5") == 1 && peak("rpie:5,ml:5") == 2)
        var positions: [(y: Double, x: Double)] = []
        for k in 0..<100 { positions.append((y: Double(k / 10) * 1e-7, x: Double(k % 10) * 1e-7)) }
        let dm = ScanCost(frames: 100, frameSize: 64, positions: positions, samplePixelSize: 2e-8, ranks: 1)
        let handover = ScanCost(frames: 100, frameSize: 64, positions: positions, samplePixelSize: 2e-8, ranks: 1,
                                engineFrameValues: peak("dm:5,ml:5"))
        let added: Double = 100 * 64 * 64 * 16
        #expect(handover.bytesPerRank - dm.bytesPerRank == added)
        #expect(dm.problem(budgetBytes: dm.bytesPerRank) == nil && handover.problem(budgetBytes: dm.bytesPerRank) != nil)
    }
}
