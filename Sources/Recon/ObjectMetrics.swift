import Foundation
import Numerics

/// How far a reconstructed object is from the truth, after removing what
/// ptychography cannot determine: a global complex factor, a sub-pixel
/// shift and a linear phase ramp. The shift comes from the amplitudes, so
/// an object with no amplitude contrast is compared unshifted.
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
        // Correlate amplitudes (a phase ramp would weaken a complex correlation),
        // each less its mean inside the region so features, not the window, decide.
        func centred(_ a: Array2D<Complex<Float>>) -> Array2D<Complex<Float>> {
            var mean: Float = 0, n: Float = 0
            for i in a.values.indices where region[i] { mean += a.values[i].length; n += 1 }
            mean /= max(1, n)
            return Array2D(height: h, width: w, values: a.values.indices.map {
                region[$0] ? Complex(a.values[$0].length - mean, 0) : .zero
            })
        }
        let ft = fft.forward(centred(truth)), fo = fft.forward(centred(object))
        let product = Array2D(height: h, width: w, values: zip(ft.values, fo.values).map { $0 * $1.conjugate })
        let correlation = fft.inverse(product).map { Double($0.length) }
        let peak = correlation.values.indices.max { correlation.values[$0] < correlation.values[$1] }!
        let py = peak / w, px = peak % w
        // Sub-pixel refinement: the correlation evaluated directly (a DFT at one
        // offset) on ever finer grids around the integer peak.
        var best = (y: Double(py > h / 2 ? py - h : py), x: Double(px > w / 2 ? px - w : px))
        let ky = (0..<h).map { Double($0 < (h + 1) / 2 ? $0 : $0 - h) / Double(h) }
        let kx = (0..<w).map { Double($0 < (w + 1) / 2 ? $0 : $0 - w) / Double(w) }
        let spectrumProduct = product.values.map { Complex(Double($0.real), Double($0.imaginary)) }
        func correlationAt(_ sy: Double, _ sx: Double) -> Double {
            let ex = kx.map { Complex(cos(2 * Double.pi * $0 * sx), sin(2 * Double.pi * $0 * sx)) }
            var total = Complex<Double>.zero
            for y in 0..<h {
                var row = Complex<Double>.zero
                for x in 0..<w { row += spectrumProduct[y * w + x] * ex[x] }
                total += row * Complex(cos(2 * Double.pi * ky[y] * sy), sin(2 * Double.pi * ky[y] * sy))
            }
            return total.length
        }
        for step in [0.25, 0.05, 0.01] {
            var top = (value: -1.0, y: best.y, x: best.x)
            for i in -3...3 { for j in -3...3 {
                let y = best.y + Double(i) * step, x = best.x + Double(j) * step
                let v = correlationAt(y, x)
                if v > top.value { top = (v, y, x) }
            } }
            best = (top.y, top.x)
        }
        let shiftY = best.y, shiftX = best.x

        // Shift the object onto the truth; estimate the phase ramp there, take it
        // out of the unshifted object (a ramp is not periodic: shifting it would
        // ring), shift again and remove what ramp remains.
        func ramp(_ o: Array2D<Complex<Float>>) -> (y: Double, x: Double) {
            var gy = Complex<Double>.zero, gx = Complex<Double>.zero
            func z(_ y: Int, _ x: Int) -> Complex<Double> {
                let p = truth[y, x] * o[y, x].conjugate
                return Complex(Double(p.real), Double(p.imaginary))
            }
            for y in 0..<(h - 1) { for x in 0..<(w - 1) where region[y * w + x] {
                if region[(y + 1) * w + x] { gy += z(y + 1, x) * z(y, x).conjugate }
                if region[y * w + x + 1] { gx += z(y, x + 1) * z(y, x).conjugate }
            } }
            return (gy.phase, gx.phase)
        }
        func applyRamp(_ a: Array2D<Complex<Float>>, _ r: (y: Double, x: Double), offset: (Double, Double)) -> Array2D<Complex<Float>> {
            var out = a
            for y in 0..<h { for x in 0..<w {
                let phase = r.y * (Double(y) + offset.0) + r.x * (Double(x) + offset.1)
                out[y, x] = a[y, x] * Complex(Float(cos(phase)), Float(sin(phase)))
            } }
            return out
        }
        let first = ramp(fourierShift(object, by: shiftY, shiftX, using: fft))
        let flattened = applyRamp(object, first, offset: (shiftY, shiftX))
        var shifted = fourierShift(flattened, by: shiftY, shiftX, using: fft)
        let rest = ramp(shifted)
        shifted = applyRamp(shifted, rest, offset: (0, 0))
        let rampY = first.y + rest.y, rampX = first.x + rest.x
        return Comparison(nrmse: nrmse(shifted.values, truth: truth.values, region: region),
                          shiftY: shiftY, shiftX: shiftX, rampY: rampY, rampX: rampX)
    }
}
