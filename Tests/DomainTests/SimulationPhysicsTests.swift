import Foundation
import Numerics
@testable import Recon
import Simulator
import Testing

/// A small scan that builds in milliseconds.
func smallConfig(frameSize: Int = 64, scan: ScanPattern = .raster(rows: 3, columns: 3), poisson: Bool = true) -> SimulationConfig {
    SimulationConfig(
        geometry: Geometry(energy: 800 * PhysicalConstants.electronVolt, distance: 0.121,
                           detectorPixelSize: 120e-6, frameSize: frameSize),
        zonePlate: ZonePlate(defocus: 15e-6),
        scan: Scan(pattern: scan, step: 200e-9, jitter: 0.2, seed: 3),
        photonsPerFrame: 1e5, poisson: poisson)
}

@Suite struct SimulationPhysicsTests {
    @Test func probeCarriesTheRequestedPhotons() throws {
        let c = smallConfig()
        for photons in [1.0, 1e4, 3.7e8] {
            let p = try c.zonePlate.probe(geometry: c.geometry, photons: photons)
            #expect(abs(p.totalIntensity - photons) / photons < 1e-5)
        }
    }

    /// With the unitary FFT, the photons at the detector equal the photons
    /// leaving the sample, frame by frame.
    @Test func parsevalHoldsForEveryFrame() throws {
        let sim = try Simulation(smallConfig())
        for i in 0..<sim.frameCount {
            let exit = sim.exitWave(at: i).totalIntensity
            let detector = sim.cleanIntensity(at: i).values.reduce(0) { $0 + Double($1) }
            #expect(abs(exit - detector) / exit < 1e-5)
            // The sample absorbs: never more photons than the probe brought.
            #expect(exit <= 1e5 * (1 + 1e-5))
        }
    }

    /// The propagated field is brightest on axis at z = f = D dr / lambda,
    /// within the depth of focus (about 2 dr^2 / lambda).
    @Test func focusSitsAtTheZonePlateFocalLength() throws {
        let c = smallConfig(frameSize: 128)
        let zp = c.zonePlate, lambda = c.geometry.wavelength
        let f = zp.focalLength(wavelength: lambda)
        #expect(abs(f - 240e-6 * 40e-9 / lambda) < 1e-12)
        var best = (z: 0.0, intensity: 0.0)
        for k in -40...40 {
            let z = f + Double(k) * 0.5e-6
            let field = try zp.probe(geometry: c.geometry, photons: 1, distance: z)
            let centre = Double(field[64, 64].lengthSquared)
            if centre > best.intensity { best = (z, centre) }
        }
        let depthOfFocus = 2 * 40e-9 * 40e-9 / lambda
        #expect(abs(best.z - f) < depthOfFocus / 2, "peak at \(best.z), focal length \(f)")
    }

    /// A defocused zone plate with a central stop makes an annulus: the
    /// geometric cone D |defocus| / (f + defocus) outside, the stop's shadow inside.
    @Test func defocusedProbeHasTheGeometricSize() throws {
        let c = smallConfig(frameSize: 128)
        let p = try c.zonePlate.probe(geometry: c.geometry, photons: 1)
        let dx = c.geometry.samplePixelSize
        let f = c.zonePlate.focalLength(wavelength: c.geometry.wavelength)
        let outer = 240e-6 * 15e-6 / (f + 15e-6) / 2 / dx
        let inner = outer * 100e-6 / 240e-6
        var within = 0.0, shadow = 0.0
        for y in 0..<128 { for x in 0..<128 {
            let r = hypot(Double(y - 64), Double(x - 64)), e = Double(p[y, x].lengthSquared)
            if r <= outer + 2 { within += e }
            if r < inner - 2 { shadow += e }
        } }
        #expect(within > 0.85, "\(within) of the light within the cone of radius \(outer) px")
        #expect(shadow < 0.05, "\(shadow) of the light inside the stop's shadow of radius \(inner) px")
    }

    /// Moving the object by whole pixels and the probe with it changes nothing
    /// in the diffraction of an isolated probe.
    @Test func wholePixelObjectShiftLeavesIntensitiesUnchanged() throws {
        let sim = try Simulation(smallConfig())
        let o = sim.object
        let (sy, sx) = (5, 3)
        let shifted = Array2D<Complex<Float>>(height: o.height + sy, width: o.width + sx) { y, x in
            y >= sy && x >= sx ? o[y - sy, x - sx] : Complex(1, 0)
        }
        let p = sim.points[4]
        let a = sim.cleanIntensity(of: sim.exitWave(object: o, pixelY: p.pixelY, pixelX: p.pixelX))
        let b = sim.cleanIntensity(of: sim.exitWave(object: shifted, pixelY: p.pixelY + Double(sy), pixelX: p.pixelX + Double(sx)))
        #expect(a == b)
        // A shift by a fraction of a pixel does change them.
        let c = sim.cleanIntensity(of: sim.exitWave(object: o, pixelY: p.pixelY + 0.5, pixelX: p.pixelX))
        #expect(a != c)
    }

    @Test(arguments: [0.3, 4.0, 25.0, 1000.0, 2e5])
    func poissonNoiseHasPoissonMeanAndVariance(lambda: Double) {
        var rng = SeededRandom(seed: 42, stream: UInt64(lambda * 10))
        let n = 100_000
        var sum = 0.0, sumSq = 0.0
        for _ in 0..<n {
            let k = rng.poisson(lambda)
            #expect(k >= 0 && k == k.rounded())
            sum += k
            sumSq += k * k
        }
        let mean = sum / Double(n), variance = sumSq / Double(n) - mean * mean
        // 5 standard errors of the mean; the variance to within 3%.
        #expect(abs(mean - lambda) < 5 * (lambda / Double(n)).squareRoot())
        #expect(abs(variance - lambda) / lambda < 0.03)
    }

    @Test func noiseIsReproducibleAndIndependentPerFrame() throws {
        let sim = try Simulation(smallConfig())
        let a = sim.frame(2), b = sim.frame(2), c = sim.frame(3)
        #expect(a.photons == b.photons)
        #expect(a.photons != c.photons)
        // Poisson counts are whole numbers scattered around the clean intensity.
        #expect(a.photons.values.allSatisfy { $0 == $0.rounded() && $0 >= 0 })
        let clean = a.clean.values.reduce(0) { $0 + Double($1) }, noisy = a.photons.values.reduce(0) { $0 + Double($1) }
        #expect(abs(noisy - clean) < 5 * clean.squareRoot())
        let noiseless = try Simulation(smallConfig(poisson: false))
        #expect(noiseless.frame(2).photons == noiseless.frame(2).clean)
    }

    @Test func beamstopAndBackgroundShapeTheMeasurement() throws {
        var c = smallConfig(poisson: false)
        c.beamstop = Beamstop(radius: 4, transmission: 0.01)
        c.background = 2
        let sim = try Simulation(c)
        let f = sim.frame(0)
        #expect(abs(f.photons[32, 32] - (f.clean[32, 32] * 0.01 + 2)) < 1e-3 * max(1, f.clean[32, 32]))
        #expect(abs(f.photons[2, 2] - (f.clean[2, 2] + 2)) < 1e-3 * max(1, f.clean[2, 2]))
    }

    @Test func sampleIsDeterministicFromItsSeed() {
        let a = TestSample(seed: 5).thicknessMap(height: 100, width: 120)
        #expect(a == TestSample(seed: 5).thicknessMap(height: 100, width: 120))
        #expect(a != TestSample(seed: 6).thicknessMap(height: 100, width: 120))
        #expect(a.values.max()! <= 2 * 100e-9 && a.values.min()! >= 0)
        // Phase and absorption follow delta and beta: O = exp(-i k delta t - k beta t).
        let o = TestSample(seed: 5).transmission(thickness: a, wavelength: 1.5e-9)
        let k = 2 * Double.pi / 1.5e-9
        let i = a.values.firstIndex { $0 > 50e-9 }!
        let t = Double(a.values[i])
        #expect(abs(Double(o.values[i].length) - exp(-k * 2.5e-4 * t)) < 1e-5)
        #expect(abs(Double(o.values[i].phase) + (k * 1e-3 * t).truncatingRemainder(dividingBy: 2 * .pi)) < 1e-4
                || abs(abs(Double(o.values[i].phase) + k * 1e-3 * t) - 2 * .pi) < 1e-4)
    }

    @Test func invalidSettingsAreNamed() {
        var c = smallConfig()
        c.geometry.frameSize = 16  // the zone plate's cone no longer fits
        c.photonsPerFrame = -1
        c.scan.step = 0
        let problems = c.problems()
        #expect(problems.contains { $0.hasPrefix("scan step") })
        #expect(problems.contains { $0.hasPrefix("photons per frame") })
        #expect(throws: SimulationError.self) { try Simulation(c) }
        var coarse = smallConfig()
        coarse.geometry.detectorPixelSize = 10e-6
        #expect(coarse.problems().contains { $0.contains("too coarse") })
    }
}
