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
