import Numerics
import Recon

/// The Fourier (modulus) constraint that the projection engines and rPIE
/// apply to an exit wave's spectrum: the model's magnitudes are replaced by
/// the measured ones on valid pixels, as far as each frame's power bound
/// asks (see `PowerBound`); masked pixels keep the model. With probe modes
/// the model's magnitude is the root of the modes' summed intensities, and
/// every mode is scaled by the same factor per pixel.
final class FourierProjection {
    private let model: PtychoModel
    private let pixels: Int
    private let powerBound: PowerBound
    /// Per frame: the amplitude misfit below which it is left as it is.
    private let bounds: UnsafeMutablePointer<Float>
    /// Scratch: one frame's model magnitudes.
    private let magnitudes: UnsafeMutablePointer<Float>

    init(model: PtychoModel, powerBound: PowerBound) {
        self.model = model
        self.powerBound = powerBound
        pixels = model.pixels
        bounds = .allocate(capacity: max(1, model.frameCount))
        magnitudes = .allocate(capacity: pixels)
        for j in 0..<model.frameCount { frameMeasured(j) }
    }

    deinit {
        bounds.deallocate()
        magnitudes.deallocate()
    }

    /// Frame j's amplitudes are new (placed while the engine runs).
    func frameMeasured(_ j: Int) {
        bounds[j] = Self.bound(model.amplitude(of: j), mask: model.mask, pixels: pixels, powerBound)
    }

    /// The misfit frame j's power bound allows.
    private static func bound(_ a: UnsafePointer<Float>, mask: UnsafePointer<Float>, pixels: Int, _ bound: PowerBound) -> Float {
        let misfit = ExpectedPoissonMisfit()
        var total = 0.0, noise = 0.0
        for i in 0..<pixels where mask[i] > 0 {
            let v = Double(a[i])
            total += v * v
            noise += misfit(v * v)
        }
        return switch bound {
        case .none: 0
        case .relative(let r): Float(0.25 * r * r * total)
        case .poisson(let k): Float(k * noise)
        }
    }

    /// Projects the unnormalized forward transform of frame j's exit wave
    /// in place. The result stays at the transform's scale: the caller
    /// applies 1/pixels after the unnormalized inverse, so a frame already
    /// within its bound costs no pass here.
    /// Returns the sum of squared amplitude errors over valid pixels.
    ///
    /// Both passes are branch-free so they vectorize.
    @inline(__always)
    func callAsFunction(_ spectrum: UnsafeMutablePointer<Complex<Float>>, frame j: Int) -> Double {
        let f = floats(spectrum)
        let amplitude = model.amplitude(of: j), bound = bounds[j]
        let mask = model.mask
        let s = 1 / Float(pixels).squareRoot()
        // The model's magnitudes, kept for the update below (no second square
        // root), and the misfit, in one plain loop: the compiler deinterleaves
        // re and im cleanly, and the relaxed sum lets it keep partial sums in
        // vector lanes (explicit lanes here make it gather the loads element
        // by element).
        let model = magnitudes
        var error: Float = 0
        for i in 0..<pixels {
            let re = f[2 * i], im = f[2 * i + 1]
            let a = (re * re + im * im).squareRoot() * s
            model[i] = a
            let d = a - amplitude[i]
            error = Relaxed.sum(error, mask[i] * d * d)
        }
        // Fraction of the misfit that remains: 0 is the exact projection.
        let keep: Float = error > bound && error > 0 ? (bound / error).squareRoot() : 1
        if keep >= 1 { return Double(error) }
        let unscaled = 1 / s
        for k in 0..<pixels {
            let re = f[2 * k], im = f[2 * k + 1]
            let a = model[k]
            let target = amplitude[k], w = mask[k]
            // New magnitude target + keep (a - target), at the transform's
            // scale; a zero model amplitude takes the target with phase 0.
            let nonzero = a > 1e-30
            let projected = (target + keep * (a - target)) / (nonzero ? a : 1)
            let factor = w * projected + (1 - w)
            f[2 * k] = nonzero ? re * factor : w * target * unscaled + (1 - w) * re
            f[2 * k + 1] = im * factor
        }
        return Double(error)
    }

    /// The same for K modes' spectra of frame j, one after another at `spectra`.
    func callAsFunction(_ spectra: UnsafeMutablePointer<Complex<Float>>, modes k: Int, frame j: Int) -> Double {
        if k == 1 { return self(spectra, frame: j) }
        let f = floats(spectra)
        let amplitude = model.amplitude(of: j), bound = bounds[j]
        let mask = model.mask
        let s = 1 / Float(pixels).squareRoot()
        let model = magnitudes
        for i in 0..<pixels { model[i] = f[2 * i] * f[2 * i] + f[2 * i + 1] * f[2 * i + 1] }
        for mode in 1..<k {
            let g = f + 2 * mode * pixels
            for i in 0..<pixels { model[i] += g[2 * i] * g[2 * i] + g[2 * i + 1] * g[2 * i + 1] }
        }
        var error: Float = 0
        for i in 0..<pixels {
            let a = model[i].squareRoot() * s
            model[i] = a
            let d = a - amplitude[i]
            error = Relaxed.sum(error, mask[i] * d * d)
        }
        let keep: Float = error > bound && error > 0 ? (bound / error).squareRoot() : 1
        if keep >= 1 { return Double(error) }
        let unscaled = 1 / s
        // The factor per pixel, kept in `model`; a pixel where every mode is
        // zero takes the target in the first mode with phase 0.
        for i in 0..<pixels {
            let a = model[i], target = amplitude[i], w = mask[i]
            let nonzero = a > 1e-30
            let projected = (target + keep * (a - target)) / (nonzero ? a : 1)
            f[2 * i] = nonzero ? f[2 * i] * (w * projected + (1 - w)) : w * target * unscaled + (1 - w) * f[2 * i]
            f[2 * i + 1] *= w * projected + (1 - w)
            model[i] = w * projected + (1 - w)
        }
        for mode in 1..<k {
            let g = f + 2 * mode * pixels
            for i in 0..<pixels {
                g[2 * i] *= model[i]
                g[2 * i + 1] *= model[i]
            }
        }
        return Double(error)
    }
}
