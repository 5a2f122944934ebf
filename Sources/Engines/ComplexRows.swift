import Numerics
import Recon
/// The engine's per-pixel passes over rows of interleaved complex numbers
/// (re, im, re, im, ...), eight numbers to a vector, with a scalar tail for
/// widths that are not a multiple of eight.
///
/// Written in explicit vectors because the compiler's own vectorization of
/// the scalar loops needs run-time overlap checks between the row pointers,
/// and its loop versions fell back to scalar code for part of the frames.
/// The products are written on interleaved vectors (duplicated real and
/// imaginary parts, a swap of each pair, signs), which LLVM compiles to
/// in-lane moves or whole-vector shuffles; taking even and odd halves of
/// the loads instead made it gather some operands from scalar loads.
/// Every product rounds as the scalar formula beside it.
enum ComplexRows {
    /// Eight complex numbers, interleaved.
    typealias Complex8 = SIMD16<Float>
    typealias Real8 = SIMD8<Float>
    static let width = 8

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>, _ i: Int) -> Complex8 {
        UnsafeRawPointer(p + 2 &* i).loadUnaligned(as: Complex8.self)
    }

    @inline(__always)
    static func store(_ p: UnsafeMutablePointer<Float>, _ i: Int, _ v: Complex8) {
        UnsafeMutableRawPointer(p + 2 &* i).storeBytes(of: v, as: Complex8.self)
    }

    @inline(__always)
    static func loadReal(_ p: UnsafePointer<Float>, _ i: Int) -> Real8 {
        UnsafeRawPointer(p + i).loadUnaligned(as: Real8.self)
    }

    @inline(__always)
    static func storeReal(_ p: UnsafeMutablePointer<Float>, _ i: Int, _ v: Real8) {
        UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: Real8.self)
    }

    /// Each number's real part in both of its lanes.
    @inline(__always)
    static func realParts(_ v: Complex8) -> Complex8 {
        Complex8(v[0], v[0], v[2], v[2], v[4], v[4], v[6], v[6], v[8], v[8], v[10], v[10], v[12], v[12], v[14], v[14])
    }

    /// Each number's imaginary part in both of its lanes.
    @inline(__always)
    static func imaginaryParts(_ v: Complex8) -> Complex8 {
        Complex8(v[1], v[1], v[3], v[3], v[5], v[5], v[7], v[7], v[9], v[9], v[11], v[11], v[13], v[13], v[15], v[15])
    }

    /// (im, re) for every (re, im).
    @inline(__always)
    static func swapped(_ v: Complex8) -> Complex8 {
        Complex8(v[1], v[0], v[3], v[2], v[5], v[4], v[7], v[6], v[9], v[8], v[11], v[10], v[13], v[12], v[15], v[14])
    }

    /// -1 in the real lanes, 1 in the imaginary ones.
    @inline(__always)
    static var signs: Complex8 { Complex8(-1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1) }

    /// a b: (ar br - ai bi, ar bi + ai br).
    @inline(__always)
    static func times(_ a: Complex8, _ b: Complex8) -> Complex8 {
        realParts(a) * b + imaginaryParts(a) * swapped(b) * signs
    }

    /// conj(a) b: (ar br + ai bi, ar bi - ai br).
    @inline(__always)
    static func conjugateTimes(_ a: Complex8, _ b: Complex8) -> Complex8 {
        realParts(a) * b - imaginaryParts(a) * swapped(b) * signs
    }

    /// |v|^2 of each number: re re + im im, as the scalar formula rounds it.
    /// For a loaded vector that is also used whole: applied to a load alone,
    /// LLVM narrows the load to scalar element loads.
    @inline(__always)
    static func powers(_ v: Complex8) -> Real8 {
        let squares = v * v
        return squares.evenHalf + squares.oddHalf
    }

    /// out = w src, or out += w src when `adding`, for one complex weight w
    /// (the probe modes' mixes).
    @inline(__always)
    static func weighted(_ src: UnsafePointer<Float>, by w: Complex<Float>, into out: UnsafeMutablePointer<Float>, adding: Bool,
                         count: Int) {
        let wr = Complex8(repeating: w.real), wi = Complex8(repeating: w.imaginary) * signs
        let end = vectorEnd(count)
        var i = 0
        while i < end {
            let v = load(src, i)
            let product = v * wr + swapped(v) * wi
            store(out, i, adding ? load(out, i) + product : product)
            i &+= width
        }
        while i < count {
            let re = src[2 &* i], im = src[2 &* i + 1]
            let pr = re * w.real - im * w.imaginary, pi = im * w.real + re * w.imaginary
            out[2 &* i] = adding ? out[2 &* i] + pr : pr
            out[2 &* i + 1] = adding ? out[2 &* i + 1] + pi : pi
            i &+= 1
        }
    }

    /// The whole vectors of a row of `count` numbers; the rest is the tail.
    @inline(__always)
    static func vectorEnd(_ count: Int) -> Int { count & ~(width - 1) }

    /// out = p o.
    @inline(__always)
    static func product(_ o: UnsafePointer<Float>, _ p: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
        let end = vectorEnd(count)
        var i = 0
        while i < end {
            store(out, i, times(load(p, i), load(o, i)))
            i &+= width
        }
        while i < count {
            let ore = o[2 &* i], oim = o[2 &* i + 1], pre = p[2 &* i], pim = p[2 &* i + 1]
            out[2 &* i] = pre * ore - pim * oim
            out[2 &* i + 1] = pre * oim + pim * ore
            i &+= 1
        }
    }

    /// The difference map's reflection, with the exit wave left as its
    /// distance from the model: d = psi - p o is stored over psi, and
    /// out = p o - d (that is 2 p o - psi). The update that follows adds the
    /// projection to d alone, so it never reads the object again.
    @inline(__always)
    static func reflection(_ o: UnsafePointer<Float>, _ p: UnsafePointer<Float>, _ psi: UnsafeMutablePointer<Float>,
                           into out: UnsafeMutablePointer<Float>, count: Int) {
        let end = vectorEnd(count)
        var i = 0
        while i < end {
            let model = times(load(p, i), load(o, i))
            let d = load(psi, i) - model
            store(psi, i, d)
            store(out, i, model - d)
            i &+= width
        }
        while i < count {
            let ore = o[2 &* i], oim = o[2 &* i + 1], pre = p[2 &* i], pim = p[2 &* i + 1]
            let fre = pre * ore - pim * oim, fim = pre * oim + pim * ore
            let dre = psi[2 &* i] - fre, dim = psi[2 &* i + 1] - fim
            psi[2 &* i] = dre
            psi[2 &* i + 1] = dim
            out[2 &* i] = fre - dre
            out[2 &* i + 1] = fim - dim
            i &+= 1
        }
    }

    /// Stores the new exit wave at i and adds its share of the object sums:
    /// num += conj(p) psi, den += |p|^2 (both updates' common end).
    @inline(__always)
    static func keepExit(_ updated: Complex8, _ p: UnsafePointer<Float>, _ psi: UnsafeMutablePointer<Float>,
                         _ num: UnsafeMutablePointer<Float>, _ den: UnsafeMutablePointer<Float>, _ i: Int) {
        store(psi, i, updated)
        let pv = load(p, i)
        store(num, i, load(num, i) + conjugateTimes(pv, updated))
        storeReal(den, i, loadReal(den, i) + powers(pv))
    }

    /// The same for one number (re, im) of a row's tail.
    @inline(__always)
    static func keepExit(_ sre: Float, _ sim: Float, _ p: UnsafePointer<Float>, _ psi: UnsafeMutablePointer<Float>,
                         _ num: UnsafeMutablePointer<Float>, _ den: UnsafeMutablePointer<Float>, _ i: Int) {
        let pre = p[2 &* i], pim = p[2 &* i + 1]
        psi[2 &* i] = sre
        psi[2 &* i + 1] = sim
        num[2 &* i] += pre * sre + pim * sim
        num[2 &* i + 1] += pre * sim - pim * sre
        den[i] += pre * pre + pim * pim
    }

    /// The difference map's exit-wave update psi = d + scale w (d = psi - p o,
    /// left by `reflection`), and the new psi's share of the object sums:
    /// num += conj(p) psi, den += |p|^2.
    @inline(__always)
    static func differenceMapUpdate(_ p: UnsafePointer<Float>, _ psi: UnsafeMutablePointer<Float>,
                                    projected w: UnsafePointer<Float>, scale: Float,
                                    numerator num: UnsafeMutablePointer<Float>,
                                    denominator den: UnsafeMutablePointer<Float>, count: Int) {
        let end = vectorEnd(count)
        var i = 0
        while i < end {
            let updated = load(psi, i) + load(w, i) * scale
            keepExit(updated, p, psi, num, den, i)
            i &+= width
        }
        while i < count {
            let sre = psi[2 &* i] + w[2 &* i] * scale
            let sim = psi[2 &* i + 1] + w[2 &* i + 1] * scale
            keepExit(sre, sim, p, psi, num, den, i)
            i &+= 1
        }
    }

    /// RAAR's exit-wave update psi = beta (d + scale w) + (1 - beta) scale q,
    /// with d = psi - p o (left by `reflection`) and q the projection of psi
    /// itself, and the object sums as above.
    @inline(__always)
    static func relaxedUpdate(_ p: UnsafePointer<Float>, _ psi: UnsafeMutablePointer<Float>,
                              projected w: UnsafePointer<Float>, projectedExit q: UnsafePointer<Float>, scale: Float, beta: Float,
                              numerator num: UnsafeMutablePointer<Float>,
                              denominator den: UnsafeMutablePointer<Float>, count: Int) {
        let end = vectorEnd(count)
        let rest = 1 - beta
        var i = 0
        while i < end {
            let updated = beta * (load(psi, i) + load(w, i) * scale) + rest * load(q, i) * scale
            keepExit(updated, p, psi, num, den, i)
            i &+= width
        }
        while i < count {
            let sre = beta * (psi[2 &* i] + w[2 &* i] * scale) + rest * q[2 &* i] * scale
            let sim = beta * (psi[2 &* i + 1] + w[2 &* i + 1] * scale) + rest * q[2 &* i + 1] * scale
            keepExit(sre, sim, p, psi, num, den, i)
            i &+= 1
        }
    }

    /// The probe step's residual sums of one frame: num += conj(o) (psi - o p)
    /// and den += |o|^2, the difference taken per pixel before the sum (the
    /// two sums it replaces nearly cancel as the probe converges).
    @inline(__always)
    static func probeResiduals(_ o: UnsafePointer<Float>, _ psi: UnsafePointer<Float>, probe p: UnsafePointer<Float>,
                               numerator num: UnsafeMutablePointer<Float>, denominator den: UnsafeMutablePointer<Float>,
                               count: Int) {
        let end = vectorEnd(count)
        var i = 0
        while i < end {
            let ov = load(o, i)
            store(num, i, load(num, i) + conjugateTimes(ov, load(psi, i) - times(ov, load(p, i))))
            storeReal(den, i, loadReal(den, i) + powers(ov))
            i &+= width
        }
        while i < count {
            let ore = o[2 &* i], oim = o[2 &* i + 1], pre = p[2 &* i], pim = p[2 &* i + 1]
            let dre = psi[2 &* i] - (ore * pre - oim * pim), dim = psi[2 &* i + 1] - (ore * pim + oim * pre)
            num[2 &* i] += ore * dre + oim * dim
            num[2 &* i + 1] += ore * dim - oim * dre
            den[i] += ore * ore + oim * oim
            i &+= 1
        }
    }

    /// The residual sums of four frames of one class (one probe row) in one
    /// pass, each frame added in turn, so each sum rounds as four
    /// single-frame passes would, while the sums are loaded and stored once.
    @inline(__always)
    static func probeResiduals(_ o: FourRows, _ psi: FourRows, probe p: UnsafePointer<Float>,
                               numerator num: UnsafeMutablePointer<Float>, denominator den: UnsafeMutablePointer<Float>,
                               count: Int) {
        let end = vectorEnd(count)
        var i = 0
        while i < end {
            let pv = load(p, i)
            let o0 = load(o.0, i), o1 = load(o.1, i), o2 = load(o.2, i), o3 = load(o.3, i)
            var n = load(num, i) + conjugateTimes(o0, load(psi.0, i) - times(o0, pv))
            n += conjugateTimes(o1, load(psi.1, i) - times(o1, pv))
            n += conjugateTimes(o2, load(psi.2, i) - times(o2, pv))
            n += conjugateTimes(o3, load(psi.3, i) - times(o3, pv))
            store(num, i, n)
            var d = loadReal(den, i) + powers(o0)
            d += powers(o1)
            d += powers(o2)
            d += powers(o3)
            storeReal(den, i, d)
            i &+= width
        }
        if i < count {
            let rest = count - i, n = num + 2 &* i, d = den + i, q = p + 2 &* i
            probeResiduals(o.0 + 2 &* i, psi.0 + 2 &* i, probe: q, numerator: n, denominator: d, count: rest)
            probeResiduals(o.1 + 2 &* i, psi.1 + 2 &* i, probe: q, numerator: n, denominator: d, count: rest)
            probeResiduals(o.2 + 2 &* i, psi.2 + 2 &* i, probe: q, numerator: n, denominator: d, count: rest)
            probeResiduals(o.3 + 2 &* i, psi.3 + 2 &* i, probe: q, numerator: n, denominator: d, count: rest)
        }
    }

    /// PIE's residual sums of one frame row, with d = scale w - p o the
    /// projected exit wave's change: numO += conj(p) d and denO += |p|^2 for
    /// the object, numP += conj(o) d and denP += |o|^2 for the probe.
    @inline(__always)
    static func pieResiduals(_ o: UnsafePointer<Float>, _ p: UnsafePointer<Float>, projected w: UnsafePointer<Float>,
                             scale: Float, objectNumerator numO: UnsafeMutablePointer<Float>,
                             objectDenominator denO: UnsafeMutablePointer<Float>,
                             probeNumerator numP: UnsafeMutablePointer<Float>,
                             probeDenominator denP: UnsafeMutablePointer<Float>, count: Int) {
        let end = vectorEnd(count)
        var i = 0
        while i < end {
            let ov = load(o, i), pv = load(p, i)
            let d = load(w, i) * scale - times(pv, ov)
            store(numO, i, load(numO, i) + conjugateTimes(pv, d))
            storeReal(denO, i, loadReal(denO, i) + powers(pv))
            store(numP, i, load(numP, i) + conjugateTimes(ov, d))
            storeReal(denP, i, loadReal(denP, i) + powers(ov))
            i &+= width
        }
        while i < count {
            let ore = o[2 &* i], oim = o[2 &* i + 1], pre = p[2 &* i], pim = p[2 &* i + 1]
            let dre = w[2 &* i] * scale - (pre * ore - pim * oim), dim = w[2 &* i + 1] * scale - (pre * oim + pim * ore)
            numO[2 &* i] += pre * dre + pim * dim
            numO[2 &* i + 1] += pre * dim - pim * dre
            denO[i] += pre * pre + pim * pim
            numP[2 &* i] += ore * dre + oim * dim
            numP[2 &* i + 1] += ore * dim - oim * dre
            denP[i] += ore * ore + oim * oim
            i &+= 1
        }
    }

    typealias FourRows = (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>)

    /// out = f (a b), or out += f (a b) when `adding`, with a one complex
    /// number and b a row whose imaginary parts are taken times `sign`: one
    /// row of a separable phase ramp applied to a spectrum.
    @inline(__always)
    static func ramped(_ f: UnsafePointer<Float>, a: (re: Float, im: Float), _ b: UnsafePointer<Float>, sign: Float,
                       into out: UnsafeMutablePointer<Float>, adding: Bool, count: Int) {
        let end = vectorEnd(count)
        var pair = Complex8(repeating: a.re)
        var bSigns = Complex8(repeating: 1)
        for k in stride(from: 1, to: 16, by: 2) {
            pair[k] = a.im
            bSigns[k] = sign
        }
        var i = 0
        while i < end {
            let v = times(load(f, i), times(pair, load(b, i) * bSigns))
            store(out, i, adding ? load(out, i) + v : v)
            i &+= width
        }
        while i < count {
            let bre = b[2 &* i], bim = sign * b[2 &* i + 1]
            let rr = a.re * bre - a.im * bim, ri = a.re * bim + a.im * bre
            let fre = f[2 &* i], fim = f[2 &* i + 1]
            let re = fre * rr - fim * ri, im = fre * ri + fim * rr
            out[2 &* i] = adding ? out[2 &* i] + re : re
            out[2 &* i + 1] = adding ? out[2 &* i + 1] + im : im
            i &+= 1
        }
    }
}
