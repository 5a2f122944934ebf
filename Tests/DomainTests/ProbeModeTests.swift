import Foundation
import Numerics
@testable import Engines
@testable import Recon
import Simulator
import Testing

@Suite struct ProbeModeTests {
    static func random(_ count: Int, seed: UInt64) -> [Complex<Float>] {
        var rng = SeededRandom(seed: seed, stream: 9)
        return (0..<count).map { _ in Complex(Float(rng.normal()), Float(rng.normal())) }
    }

    /// sum_k P_k P_k^H on a few pixel pairs: what the frames see of the modes.
    static func density(_ modes: [Complex<Float>], count k: Int, pixels: Int) -> [Complex<Double>] {
        var out: [Complex<Double>] = []
        for (a, b) in [(0, 0), (1, 5), (7, 3), (pixels - 1, 2)] {
            var s = Complex<Double>.zero
            for m in 0..<k {
                let x = modes[m * pixels + a], y = modes[m * pixels + b]
                s = s + Complex(Double(x.real), Double(x.imaginary)) * Complex(Double(y.real), -Double(y.imaginary))
            }
            out.append(s)
        }
        return out
    }

    static func inner(_ v: [Complex<Float>], _ a: Int, _ b: Int, pixels: Int) -> Complex<Double> {
        var s = Complex<Double>.zero
        for i in 0..<pixels {
            let x = v[a * pixels + i], y = v[b * pixels + i]
            s = s + Complex(Double(x.real), -Double(x.imaginary)) * Complex(Double(y.real), Double(y.imaginary))
        }
        return s
    }

    /// Mixing by the Gram matrix's eigenvectors leaves the modes orthogonal,
    /// sorted by power, and makes the same frames (the density matrix is unchanged).
    @Test(arguments: [2, 3, 5])
    func orthogonalizingKeepsTheBeamAndSortsTheModes(k: Int) throws {
        let pixels = 64
        var modes = Self.random(k * pixels, seed: UInt64(k))
        // Make them far from orthogonal: each mode leans on the first.
        for m in 1..<k { for i in 0..<pixels { modes[m * pixels + i] += modes[i] * Complex(0.8, 0.3) } }
        let before = Self.density(modes, count: k, pixels: pixels)
        let v = modes.withUnsafeBufferPointer { ProbeModes.orthogonalizingMix($0.baseAddress!, count: k, pixels: pixels) }
        // V is unitary.
        for a in 0..<k { for b in 0..<k {
            var s = Complex<Double>.zero
            for r in 0..<k { s = s + v[a * k + r].conjugate * v[b * k + r] }
            #expect((s - Complex(a == b ? 1 : 0, 0)).length < 1e-9)
        } }
        let mix = v.map { Complex(Float($0.real), Float($0.imaginary)) }
        var scratch = [Complex<Float>](repeating: .zero, count: k * max(pixels, ProbeModes.mixBlock))
        modes.withUnsafeMutableBufferPointer { m in
            mix.withUnsafeBufferPointer { v in
                scratch.withUnsafeMutableBufferPointer {
                    ProbeModes.mix(m.baseAddress!, count: k, length: pixels, stride: pixels, by: v.baseAddress!, scratch: $0.baseAddress!)
                }
            }
        }
        let after = Self.density(modes, count: k, pixels: pixels)
        for (x, y) in zip(before, after) { #expect((x - y).length < 1e-4 * max(1, x.length)) }
        let powers = (0..<k).map { Self.inner(modes, $0, $0, pixels: pixels).real }
        #expect(powers == powers.sorted(by: >))
        for a in 0..<k { for b in 0..<k where a != b {
            #expect(Self.inner(modes, a, b, pixels: pixels).length < 1e-4 * powers[0])
        } }
        // Already orthogonal and sorted: the mix is the identity.
        let again = modes.withUnsafeBufferPointer { ProbeModes.orthogonalizingMix($0.baseAddress!, count: k, pixels: pixels) }
        for a in 0..<k { for b in 0..<k { #expect((again[a * k + b] - Complex(a == b ? 1 : 0, 0)).length < 1e-3) } }
    }

    /// The first guess: the probe's own power split among orthogonal modes,
    /// the extra ones carrying their starting share each.
    @Test func extraModesStartSmallAndOrthogonal() throws {
        let c = smallConfig()
        let probe = try c.zonePlate.probe(geometry: c.geometry, photons: 1e6)
        let m = probe.height, pixels = m * m
        let modes = ProbeModes.initial(from: probe.values, size: m, count: 3)
        let powers = (0..<3).map { Self.inner(modes, $0, $0, pixels: pixels).real }
        #expect(abs(powers.reduce(0, +) - 1e6) < 1e6 * 1e-4)
        let share = ProbeModes.initialShare(modes: 3)
        #expect(share > 0.01 && share < 0.5)
        #expect(abs(powers[1] / 1e6 - share) < 1e-3 && abs(powers[2] / 1e6 - share) < 1e-3)
        for (a, b) in [(0, 1), (0, 2), (1, 2)] { #expect(Self.inner(modes, a, b, pixels: pixels).length < 1e-3 * powers[0]) }
    }

    /// With several modes, the model's magnitude is the root of the summed
    /// intensities: an exact projection makes that equal the measurement
    /// and keeps each mode's share of every pixel.
    @Test func theFourierProjectionScalesEveryModeAlike() throws {
        let f = try EngineFixture()
        var options = EngineOptions()
        options.probeModes = 2
        options.powerBound = .none
        let model = try PtychoModel(comm: SingleRank(), layout: f.layout, frames: f.frames, mask: [Float](repeating: 1, count: f.m * f.m),
                                    probe: f.sim.probe, options: options)
        let project = FourierProjection(model: model, powerBound: .none)
        let pixels = f.m * f.m
        let spectra = Self.random(2 * pixels, seed: 4)
        var projected = spectra
        _ = projected.withUnsafeMutableBufferPointer { project($0.baseAddress!, modes: 2, frame: 3) }
        let a = model.amplitude(of: 3), s = 1 / Float(pixels).squareRoot()
        for i in stride(from: 0, to: pixels, by: 37) {
            let total = (projected[i].lengthSquared + projected[pixels + i].lengthSquared).squareRoot() * s
            #expect(abs(total - a[i]) <= 1e-4 * max(1, a[i]))
            // The ratio of the two modes at a pixel is kept.
            let before = spectra[pixels + i] / spectra[i], after = projected[pixels + i] / projected[i]
            #expect((before - after).length <= 1e-3 * max(1, before.length))
        }
    }

    /// Engines that model one coherent probe refuse modes by name, before
    /// anything runs; DM's frame memory is counted once per mode.
    @Test func enginesWithoutModesRefuseThemAndMemoryCountsThem() {
        var o = EngineOptions()
        o.probeModes = 3
        #expect(o.problems().isEmpty)
        #expect(EngineRegistry.peakFrameValues(o) == 3)
        o.algorithm = "ml"
        #expect(o.problems().contains { $0.contains("probe_modes: ml models one coherent probe") && $0.contains("dm or raar") })
        o.algorithm = "dm"
        o.engines = [EngineRun(name: "dm", iterations: 3), EngineRun(name: "rpie", iterations: 2)]
        #expect(o.problems().contains { $0.contains("rpie models one coherent probe") })
        o.probeModes = 9
        o.engines = []
        #expect(o.problems().contains { $0.hasPrefix("probe_modes:") })
    }

    /// The simulator's modes are orthogonal with the powers asked for, and
    /// a frame is their incoherent sum.
    @Test func simulatedIlluminationHasTheModesAskedFor() throws {
        var c = smallConfig(poisson: false)
        c.modePowers = [7, 2, 1]
        let sim = try Simulation(c)
        #expect(sim.modes.count == 3)
        for (x, y) in zip(sim.modeFractions, [0.7, 0.2, 0.1]) { #expect(abs(x - y) < 1e-6) }
        let pixels = sim.frameSize * sim.frameSize
        let all = sim.modes.flatMap(\.values)
        for (a, b) in [(0, 1), (0, 2), (1, 2)] { #expect(Self.inner(all, a, b, pixels: pixels).length < 1e-4 * 1e5) }
        let frame = sim.cleanIntensity(at: 2)
        #expect(abs(frame.values.reduce(0.0) { $0 + Double($1) } - sim.exitWaveTotals(at: 2)) < 1e-3 * sim.exitWaveTotals(at: 2))
        c.modePowers = [1, -1]
        #expect(c.problems().contains { $0.contains("mode powers must be positive") })
    }

    /// Position errors: the file records wrong positions on the grid the
    /// solver makes from them; the truth keeps the true ones, off by the
    /// asked rms and drift.
    @Test func recordedPositionsCarryTheErrorsAskedFor() throws {
        var c = smallConfig(scan: .spiral(points: 400))
        c.positionErrors = PositionErrors(rms: 1.5, drift: 3, seed: 5)
        let sim = try Simulation(c)
        let dx = c.geometry.samplePixelSize
        let grid = ObjectGrid(positions: sim.recordedPositions, pixelSize: dx, frameSize: sim.frameSize)
        #expect(grid.height == sim.object.height && grid.width == sim.object.width)
        let drawn = c.positionErrors!.errors(count: sim.frameCount)
        let errors = zip(grid.exactCorners, sim.points).map { ($0.y - $1.pixelY, $0.x - $1.pixelX) }
        // Recorded minus true is the drawn error, but where a true window would leave the grid.
        let inside = zip(errors, drawn).filter { abs($0.0 - $1.y) < 1e-9 && abs($0.1 - $1.x) < 1e-9 }.count
        #expect(inside >= sim.frameCount - 8, "\(inside) of \(sim.frameCount)")
        // A straight line in scan order per axis: its rise is the drift, what is left the random error.
        let n = Double(drawn.count)
        let t = (0..<drawn.count).map { Double($0) / (n - 1) }
        func fit(_ v: [Double]) -> (slope: Double, rms: Double) {
            let mt = t.reduce(0, +) / n, mv = v.reduce(0, +) / n
            let slope = zip(t, v).reduce(0.0) { $0 + ($1.0 - mt) * ($1.1 - mv) } / t.reduce(0.0) { $0 + ($1 - mt) * ($1 - mt) }
            let residual = zip(t, v).map { $1 - mv - slope * ($0 - mt) }
            return (slope, (residual.reduce(0.0) { $0 + $1 * $1 } / n).squareRoot())
        }
        let y = fit(drawn.map(\.y)), x = fit(drawn.map(\.x))
        #expect(abs((y.slope * y.slope + x.slope * x.slope).squareRoot() - 3) < 0.5, "\(y) \(x)")
        #expect(abs((y.rms * y.rms + x.rms * x.rms).squareRoot() - 1.5) < 0.2, "\(y) \(x)")
        c.positionErrors = PositionErrors(rms: -1)
        #expect(c.problems().contains { $0.contains("position error") })
    }
}

extension Simulation {
    /// Photons leaving the sample at scan point `index`, over every mode.
    func exitWaveTotals(at index: Int) -> Double {
        modes.indices.reduce(0.0) { $0 + exitWave(at: index, mode: $1).totalIntensity }
    }
}
