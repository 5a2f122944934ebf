import Foundation
import Numerics
import Recon

/// Mixed-state probe modes (Thibault & Menzel, Nature 494, 68, 2013): a
/// partially coherent beam is K mutually incoherent modes, and a frame is
/// the sum of the intensities each makes. The modes are kept orthogonal:
/// any unitary mix of them makes the same frames, and the orthogonal one
/// sorted by power is unique (up to phases), so each mode means something
/// and the powers can be read off.
enum ProbeModes {
    /// The most modes a reconstruction takes.
    static let maximum = 8
    /// Each extra mode's share of the power at the start: a quarter, and
    /// half the power among them all at most. DM grows a mode that starts
    /// weak only slowly (measured on 70/20/10% modes: starting at 5% each,
    /// 0.85/0.09/0.06 after 400 iterations; at 25%, 0.70/0.19/0.11, and
    /// shrinking a mode that starts too strong is quick).
    static func initialShare(modes: Int) -> Double { modes > 1 ? min(0.25, 0.5 / Double(modes - 1)) : 0 }

    /// K modes from one probe: the probe itself, then the probe times low
    /// order shapes across it (x, y, x^2, xy, y^2, ... in units of its rms
    /// radius), each made orthogonal to those before and given
    /// `initialShare` of the power, the first mode keeping the rest.
    static func initial(from probe: [Complex<Float>], size m: Int, count: Int) -> [Complex<Float>] {
        guard count > 1 else { return probe }
        let share = initialShare(modes: count)
        var total = 0.0, cy = 0.0, cx = 0.0
        for y in 0..<m { for x in 0..<m {
            let w = Double(probe[y * m + x].lengthSquared)
            total += w; cy += w * Double(y); cx += w * Double(x)
        } }
        guard total > 0 else { return probe + [Complex<Float>](repeating: .zero, count: (count - 1) * m * m) }
        cy /= total; cx /= total
        var spread = 0.0
        for y in 0..<m { for x in 0..<m {
            let dy = Double(y) - cy, dx = Double(x) - cx
            spread += Double(probe[y * m + x].lengthSquared) * (dy * dy + dx * dx)
        } }
        let radius = max(1, (spread / total).squareRoot())
        var modes: [[Complex<Double>]] = [probe.map { Complex(Double($0.real), Double($0.imaginary)) }]
        var order = 1
        while modes.count < count && order < 64 {
            let (a, b) = ModeShapes.exponents(order)
            order += 1
            var v = [Complex<Double>](repeating: .zero, count: m * m)
            for y in 0..<m { for x in 0..<m {
                let shape = pow((Double(x) - cx) / radius, Double(a)) * pow((Double(y) - cy) / radius, Double(b))
                v[y * m + x] = modes[0][y * m + x].multiplied(by: shape)
            } }
            for u in modes { ModeShapes.removeProjection(of: u, from: &v) }
            let norm = v.reduce(0.0) { $0 + $1.lengthSquared }
            guard norm > 1e-12 * total else { continue }
            let scale = (share * total / norm).squareRoot()
            modes.append(v.map { $0.multiplied(by: scale) })
        }
        let first = (1 - share * Double(modes.count - 1)).squareRoot()
        modes[0] = modes[0].map { $0.multiplied(by: first) }
        var out = modes.flatMap { $0.map { Complex(Float($0.real), Float($0.imaginary)) } }
        if modes.count < count { out += [Complex<Float>](repeating: .zero, count: (count - modes.count) * m * m) }
        return out
    }

    /// The unitary K x K mix V (column c: the weights of the old modes in
    /// new mode c) that makes `modes` orthogonal and sorted by power,
    /// strongest first: the eigenvectors of their Gram matrix. Each column's
    /// largest weight is real and positive, so a set already orthogonal
    /// and sorted gets the identity and modes do not flip from one call to
    /// the next. Column-major.
    static func orthogonalizingMix(_ modes: UnsafePointer<Complex<Float>>, count k: Int, pixels: Int) -> [Complex<Double>] {
        var gram = [Complex<Double>](repeating: .zero, count: k * k)
        for a in 0..<k {
            for b in a..<k {
                var re = 0.0, im = 0.0
                let pa = modes + a * pixels, pb = modes + b * pixels
                for i in 0..<pixels {
                    let x = pa[i], y = pb[i]
                    re += Double(x.real * y.real + x.imaginary * y.imaginary)
                    im += Double(x.real * y.imaginary - x.imaginary * y.real)
                }
                gram[a * k + b] = Complex(re, im)
                gram[b * k + a] = Complex(re, -im)
            }
        }
        return HermitianEigen.vectors(gram, size: k)
    }

    /// Pixels mixed at a time: every mode's block stays in L1.
    static let mixBlock = 256

    /// new_c = sum_a old_a V[a, c] over `length` values of each of K modes
    /// (mode a's at a x `stride`), in place, a block of values at a time:
    /// one read and one write of them; `scratch` holds K x `mixBlock` values.
    @inline(__always)
    static func mix(_ values: UnsafeMutablePointer<Complex<Float>>, count k: Int, length: Int, stride: Int,
                    by v: UnsafePointer<Complex<Float>>, scratch: UnsafeMutablePointer<Complex<Float>>) {
        let f = floats(values), s = floats(scratch)
        let block = mixBlock
        var start = 0
        while start < length {
            let n = min(block, length - start)
            for a in 0..<k { (s + 2 * a * block).update(from: f + 2 * (a * stride + start), count: 2 * n) }
            for c in 0..<k {
                let out = f + 2 * (c * stride + start)
                for a in 0..<k {
                    ComplexRows.weighted(s + 2 * a * block, by: v[c * k + a], into: out, adding: a > 0, count: n)
                }
            }
            start += n
        }
    }
}

/// Eigenvectors of a small Hermitian matrix, by cyclic Jacobi rotations on
/// its real symmetric form [[A, -B], [B, A]] (A + iB the matrix), whose
/// eigenvalues come in pairs, each pair's vectors (x, y) and (-y, x) both
/// giving the complex vector x + iy.
enum HermitianEigen {
    /// Column-major K x K unitary matrix of eigenvectors, eigenvalues descending.
    static func vectors(_ h: [Complex<Double>], size k: Int) -> [Complex<Double>] {
        let n = 2 * k
        var a = [Double](repeating: 0, count: n * n), v = [Double](repeating: 0, count: n * n)
        for r in 0..<k { for c in 0..<k {
            let z = h[r * k + c]
            a[r * n + c] = z.real; a[(r + k) * n + (c + k)] = z.real
            a[r * n + (c + k)] = -z.imaginary; a[(r + k) * n + c] = z.imaginary
        } }
        for i in 0..<n { v[i * n + i] = 1 }
        let scale = a.reduce(0) { max($0, abs($1)) }
        for _ in 0..<64 {
            var off = 0.0
            for p in 0..<n { for q in (p + 1)..<n { off += a[p * n + q] * a[p * n + q] } }
            if off <= 1e-30 * max(scale * scale, .leastNormalMagnitude) { break }
            for p in 0..<n {
                for q in (p + 1)..<n where a[p * n + q] != 0 {
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q])
                    let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for r in 0..<n {
                        let arp = a[r * n + p], arq = a[r * n + q]
                        a[r * n + p] = c * arp - s * arq
                        a[r * n + q] = s * arp + c * arq
                    }
                    for r in 0..<n {
                        let apr = a[p * n + r], aqr = a[q * n + r]
                        a[p * n + r] = c * apr - s * aqr
                        a[q * n + r] = s * apr + c * aqr
                    }
                    for r in 0..<n {
                        let vrp = v[r * n + p], vrq = v[r * n + q]
                        v[r * n + p] = c * vrp - s * vrq
                        v[r * n + q] = s * vrp + c * vrq
                    }
                }
            }
        }
        // Real eigenvectors by eigenvalue, descending; each becomes a complex
        // vector, kept when it is independent of those kept before.
        let order = (0..<n).sorted { (a[$0 * n + $0], -$0) > (a[$1 * n + $1], -$1) }
        var kept: [[Complex<Double>]] = []
        for col in order where kept.count < k {
            var z = (0..<k).map { Complex(v[$0 * n + col], v[($0 + k) * n + col]) }
            for u in kept {
                var overlap = Complex<Double>.zero
                for i in 0..<k { overlap = overlap + u[i].conjugate * z[i] }
                for i in 0..<k { z[i] = z[i] - u[i] * overlap }
            }
            let norm = z.reduce(0.0) { $0 + $1.lengthSquared }.squareRoot()
            guard norm > 0.5 else { continue }
            // The largest weight real and positive.
            let unit = z.map { $0.divided(by: norm) }
            let big = unit.indices.max { unit[$0].length < unit[$1].length }!
            let phase = unit[big].divided(by: unit[big].length)
            kept.append(unit.map { $0 * phase.conjugate })
        }
        var out = [Complex<Double>](repeating: .zero, count: k * k)
        for (c, z) in kept.enumerated() { for r in 0..<k { out[c * k + r] = z[r] } }
        return out
    }
}
