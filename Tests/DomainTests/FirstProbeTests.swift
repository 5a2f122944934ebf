import Engines
import Foundation
import Numerics
import Recon
import Simulator
import Testing

/// The first probe a solve starts from: the recorded optics when a scan has
/// them, else the mean pattern, said in a warning.
@Suite struct FirstProbeTests {
    func meanPattern(_ sim: Simulation) -> Array2D<Float> {
        var mean = Array2D<Float>(height: sim.frameSize, width: sim.frameSize, repeating: 0)
        for i in 0..<sim.frameCount {
            let frame = sim.cleanIntensity(at: i)
            for k in 0..<mean.count { mean.values[k] += frame.values[k] / Float(sim.frameCount) }
        }
        return mean
    }

    /// |<a, b>| / (|a| |b|): 1 for fields equal up to a constant factor.
    func overlap(_ a: Array2D<Complex<Float>>, _ b: Array2D<Complex<Float>>) -> Double {
        var dot = Complex<Double>.zero, na = 0.0, nb = 0.0
        for (x, y) in zip(a.values, b.values) {
            let p = Complex<Double>(Double(x.real), Double(x.imaginary)), q = Complex<Double>(Double(y.real), Double(y.imaginary))
            dot += p * q.conjugate
            na += p.lengthSquared
            nb += q.lengthSquared
        }
        return dot.length / (na * nb).squareRoot()
    }

    @Test func theRecordedOpticsMakeTheProbeThatMadeTheData() throws {
        let config = smallConfig(scan: .raster(rows: 4, columns: 4), poisson: false)
        let sim = try Simulation(config)
        let mean = meanPattern(sim)
        let first = try FirstProbe.make(source: .optics, optics: config.zonePlate, meanIntensity: mean,
                                        geometry: config.geometry, defocus: 0)
        #expect(first.warning == nil)
        #expect(first.origin.contains("recorded zone plate (240 µm, outer zone 40 nm, stop 100 µm) at 15.0 µm defocus"), "\(first.origin)")
        #expect(overlap(first.probe, sim.probe) > 0.9999)
        let photons = mean.values.reduce(0) { $0 + Double($1) }
        #expect(abs(first.probe.totalIntensity - photons) / photons < 1e-4)
        // The mean pattern's flat-phase guess is far from it.
        let flat = try FirstProbe.make(source: .mean, optics: config.zonePlate, meanIntensity: mean, geometry: config.geometry, defocus: 0)
        #expect(flat.warning == nil && flat.origin == "the mean pattern, flat phase")
        #expect(overlap(flat.probe, sim.probe) < 0.7, "\(overlap(flat.probe, sim.probe))")
    }

    @Test func withoutUsableOpticsTheMeanPatternIsUsedAndSaidSo() throws {
        let config = smallConfig(scan: .raster(rows: 2, columns: 2), poisson: false)
        let mean = meanPattern(try Simulation(config))
        let none = try FirstProbe.make(source: .optics, optics: nil, meanIntensity: mean, geometry: config.geometry, defocus: 0)
        #expect(none.warning?.contains("records no optics") == true && none.warning?.contains("flat phase") == true, "\(String(describing: none.warning))")
        #expect(none.origin == "the mean pattern, flat phase")
        var microns = config.zonePlate
        microns.outerZoneWidth = 40  // nm written as m
        let bad = try FirstProbe.make(source: .optics, optics: microns, meanIntensity: mean, geometry: config.geometry, defocus: 15e-6)
        #expect(bad.warning?.contains("outer_zone_width 40 m") == true, "\(String(describing: bad.warning))")
        #expect(bad.origin == "the mean pattern at 15.0 µm defocus")
        // A lens whose cone the detector cannot hold at this geometry.
        var coarse = config.zonePlate
        coarse.outerZoneWidth = 10e-9
        let cone = try FirstProbe.make(source: .optics, optics: coarse, meanIntensity: mean, geometry: config.geometry, defocus: 0)
        #expect(cone.warning?.contains("too coarse for outer zone width") == true, "\(String(describing: cone.warning))")
    }

    /// The newcomer's case: a scan reconstructed without any probe option
    /// reaches the truth from its recorded optics, where the flat guess
    /// of the mean pattern stays far from it in as many iterations.
    @Test func theOpticsProbeReconstructsWhereTheFlatGuessDoesNot() throws {
        let f = try EngineFixture()
        let mean = meanPattern(f.sim)
        var errors: [FirstProbeSource: Double] = [:]
        for source in FirstProbeSource.allCases {
            let first = try FirstProbe.make(source: source, optics: f.sim.config.zonePlate, meanIntensity: mean,
                                            geometry: f.sim.config.geometry, defocus: 0)
            var options = EngineOptions()
            options.powerBound = .none  // noise-free data
            let e = try EngineRegistry.make(comm: SingleRank(), layout: f.layout, frames: f.frames,
                                     mask: [Float](repeating: 1, count: f.m * f.m), probe: first.probe, options: options)
            for _ in 0..<40 { try e.iterate() }
            errors[source] = f.nrmse(e)
        }
        #expect(errors[.optics]! < 0.05, "\(errors)")
        #expect(errors[.mean]! > 3 * errors[.optics]!, "\(errors)")
    }
}
