import Foundation
import Numerics

/// How far a reconstructed object is from the truth, after removing what
/// ptychography cannot determine: a global complex factor, a sub-pixel
/// shift and a linear phase ramp.
public enum ObjectMetrics {
    public struct Comparison: Sendable, Codable {
        public var nrmse: Double
        public var shiftY: Double
        public var shiftX: Double
        public var rampY: Double
        public var rampX: Double
    }

    /// Pixels where the scan's illumination exceeds `threshold` of its maximum.
    public static func illuminated(probe: Array2D<Complex<Float>>, corners: [(y: Int, x: Int)],
                                   height: Int, width: Int, threshold: Float = 0.1) -> [Bool] {
        var sum = [Float](repeating: 0, count: height * width)
        for c in corners {
            for y in 0..<probe.height { for x in 0..<probe.width {
                sum[(c.y + y) * width + c.x + x] += probe[y, x].lengthSquared
            } }
        }
        let top = sum.max() ?? 0
        return sum.map { $0 > threshold * top }
    }

    /// sqrt(sum |g O - T|^2 / sum |T|^2) over `region`, with g the best complex factor.
    public static func nrmse(_ object: [Complex<Float>], truth: [Complex<Float>], region: [Bool]) -> Double {
        var cross = Complex<Double>.zero, norm = 0.0, truthNorm = 0.0
        for i in object.indices where region[i] {
            let o = Complex(Double(object[i].real), Double(object[i].imaginary))
            let t = Complex(Double(truth[i].real), Double(truth[i].imaginary))
            cross += t * o.conjugate
            norm += o.lengthSquared
            truthNorm += t.lengthSquared
        }
        guard norm > 0, truthNorm > 0 else { return .infinity }
        let g = cross / Complex(norm, 0)
        var error = 0.0
        for i in object.indices where region[i] {
            let o = Complex(Double(object[i].real), Double(object[i].imaginary))
            let t = Complex(Double(truth[i].real), Double(truth[i].imaginary))
            error += (g * o - t).lengthSquared
        }
        return (error / truthNorm).squareRoot()
    }

    /// The full comparison: registers `object` to `truth` (sub-pixel shift by
    /// cross-correlation with parabolic refinement, then the phase ramp from
    /// neighbouring-pixel phase differences) and reports the NRMSE.
    public static func compare(_ object: Array2D<Complex<Float>>, truth: Array2D<Complex<Float>>, region: [Bool]) throws -> Comparison {
        precondition(object.shape == truth.shape && region.count == object.count)
        let h = object.height, w = object.width
        let fft = try FourierTransform(height: h, width: w)
        // Remove each one's mean inside the region so the correlation follows features, not the window.
        func centred(_ a: Array2D<Complex<Float>>) -> Array2D<Complex<Float>> {
            var mean = Complex<Float>.zero, n: Float = 0
            for i in a.values.indices where region[i] { mean += a.values[i]; n += 1 }
            mean = mean.scaled(by: 1 / max(1, n))
            return Array2D(height: h, width: w, values: a.values.indices.map { region[$0] ? a.values[$0] - mean : .zero })
        }
        let ft = fft.forward(centred(truth)), fo = fft.forward(centred(object))
        let product = Array2D(height: h, width: w, values: zip(ft.values, fo.values).map { $0 * $1.conjugate })
        let correlation = fft.inverse(product).map { Double($0.length) }
        let peak = correlation.values.indices.max { correlation.values[$0] < correlation.values[$1] }!
        let py = peak / w, px = peak % w
        func refine(_ minus: Double, _ centre: Double, _ plus: Double) -> Double {
            let d = minus - 2 * centre + plus
            return d == 0 ? 0 : max(-0.5, min(0.5, 0.5 * (minus - plus) / d))
        }
        let fy = refine(correlation[(py + h - 1) % h, px], correlation[py, px], correlation[(py + 1) % h, px])
        let fx = refine(correlation[py, (px + w - 1) % w], correlation[py, px], correlation[py, (px + 1) % w])
        let shiftY = Double(py > h / 2 ? py - h : py) + fy
        let shiftX = Double(px > w / 2 ? px - w : px) + fx

        // Shift the object onto the truth (Fourier shift theorem).
        var spectrum = fft.forward(object)
        for y in 0..<h {
            let qy = Double(y < (h + 1) / 2 ? y : y - h) / Double(h)
            for x in 0..<w {
                let qx = Double(x < (w + 1) / 2 ? x : x - w) / Double(w)
                let phase = -2 * Double.pi * (qy * shiftY + qx * shiftX)
                spectrum[y, x] = spectrum[y, x] * Complex(Float(cos(phase)), Float(sin(phase)))
            }
        }
        var shifted = fft.inverse(spectrum)

        // Phase ramp: the mean phase step between neighbours of truth x conj(object).
        var gy = Complex<Double>.zero, gx = Complex<Double>.zero
        func z(_ y: Int, _ x: Int) -> Complex<Double> {
            let t = truth[y, x], o = shifted[y, x]
            let p = t * o.conjugate
            return Complex(Double(p.real), Double(p.imaginary))
        }
        for y in 0..<(h - 1) { for x in 0..<(w - 1) where region[y * w + x] {
            if region[(y + 1) * w + x] { gy += z(y + 1, x) * z(y, x).conjugate }
            if region[y * w + x + 1] { gx += z(y, x + 1) * z(y, x).conjugate }
        } }
        let rampY = gy.phase, rampX = gx.phase
        for y in 0..<h { for x in 0..<w {
            let phase = rampY * Double(y) + rampX * Double(x)
            shifted[y, x] = shifted[y, x] * Complex(Float(cos(phase)), Float(sin(phase)))
        } }
        return Comparison(nrmse: nrmse(shifted.values, truth: truth.values, region: region),
                          shiftY: shiftY, shiftX: shiftX, rampY: rampY, rampX: rampX)
    }
}
