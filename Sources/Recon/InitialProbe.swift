import Foundation
import Numerics

/// A first probe when the file offers none: the mean diffraction amplitude
/// taken to the sample plane with a flat phase, or with the quadratic phase
/// of a focus `defocus` upstream (zone-plate-like), scaled so that
/// sum |P|^2 equals the mean photons per frame.
public enum InitialProbe {
    /// `meanIntensity`: the mean frame, zero frequency at the centre pixel.
    public static func fromMeanDiffraction(_ meanIntensity: Array2D<Float>, geometry: Geometry, defocus: Double = 0) throws -> Array2D<Complex<Float>> {
        let n = meanIntensity.height
        let photons = meanIntensity.values.reduce(0) { $0 + Double(max(0, $1)) }
        guard photons > 0 else { throw SimulationError.invalid("the frames hold no photons: no probe can be estimated") }
        let lambda = geometry.wavelength, dx = geometry.samplePixelSize
        let spectrum = Array2D<Complex<Float>>(height: n, width: n) { y, x in
            let a = Double(max(0, meanIntensity[y, x])).squareRoot()
            guard defocus != 0 else { return Complex(Float(a), 0) }
            // Fresnel transfer function exp(-i pi lambda z |q|^2) for spatial frequency q.
            let qy = Double(y - n / 2) / (Double(n) * dx), qx = Double(x - n / 2) / (Double(n) * dx)
            let phase = -Double.pi * lambda * defocus * (qy * qy + qx * qx)
            return Complex(Float(a * cos(phase)), Float(a * sin(phase)))
        }
        let fft = try FourierTransform(height: n, width: n)
        let probe = fft.inverse(spectrum.fftShifted(inverse: true)).fftShifted()
        let scale = Float((photons / probe.totalIntensity).squareRoot())
        return probe.map { $0.scaled(by: scale) }
    }
}

/// Where the first probe of a solve comes from.
public enum FirstProbeSource: String, CaseIterable, Sendable {
    /// The zone plate and defocus the scan records, when it records them and
    /// they fit the geometry; otherwise the mean pattern, with a warning.
    case optics
    /// The mean pattern's amplitude with the phase of a chosen defocus.
    case mean
}

public struct FirstProbe {
    public var probe: Array2D<Complex<Float>>
    /// What it was made from, for the log.
    public var origin: String
    /// Why the recorded optics were not used, when they were asked for.
    public var warning: String?

    /// `meanIntensity`: the mean frame, zero frequency at the centre pixel;
    /// its photons set the probe's scale whatever the source.
    public static func make(source: FirstProbeSource, optics: ZonePlate?, meanIntensity: Array2D<Float>,
                            geometry: Geometry, defocus: Double) throws -> FirstProbe {
        var warning: String? = nil
        if source == .optics {
            if let optics {
                if let problem = optics.recordProblem ?? optics.problems(geometry: geometry).first {
                    warning = "the recorded optics cannot make the probe (\(problem))"
                } else {
                    let photons = meanIntensity.values.reduce(0) { $0 + Double(max(0, $1)) }
                    guard photons > 0 else { throw SimulationError.invalid("the frames hold no photons: no probe can be estimated") }
                    let origin = String(format: "the recorded zone plate (%.0f µm, outer zone %.0f nm, stop %.0f µm) at %.1f µm defocus",
                                        optics.diameter * 1e6, optics.outerZoneWidth * 1e9, optics.centralStop * 1e6, optics.defocus * 1e6)
                    return FirstProbe(probe: try optics.probe(geometry: geometry, photons: photons), origin: origin, warning: nil)
                }
            } else {
                warning = "the scan records no optics (zone plate and defocus, docs/CXI.md)"
            }
            warning! += defocus == 0 ? ": the first probe is the mean pattern with a flat phase instead (probe_defocus gives it a focus's)"
                : String(format: ": the first probe is the mean pattern with a %.1f µm defocus's phase instead", defocus * 1e6)
        }
        let probe = try InitialProbe.fromMeanDiffraction(meanIntensity, geometry: geometry, defocus: defocus)
        let origin = defocus == 0 ? "the mean pattern, flat phase" : String(format: "the mean pattern at %.1f µm defocus", defocus * 1e6)
        return FirstProbe(probe: probe, origin: origin, warning: warning)
    }
}
