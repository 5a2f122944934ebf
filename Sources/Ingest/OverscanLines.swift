import Foundation
import Numerics

/// An interference line of a readout channel: a cos(omega s) + b sin(omega s)
/// over the readout sequence index s, omega in radians per sample.
public struct InterferenceLine: Equatable, Sendable {
    public var omega: Double
    public var a: Double
    public var b: Double
}

/// Least-squares fits of interference lines at any frequency to one
/// channel's overscan samples.
///
/// The readout spectrum finds lines only to the nearest bin, and a real line
/// lies between bins: fitted at a bin's frequency, its phase drifts by up to
/// half a cycle over the readout and most of it stays. The overscan sees no
/// light, so its samples are all background on every frame: their
/// transforms at any frequency come from a Goertzel pass over the rows, the
/// normal equations of the fit in closed form (geometric sums over the
/// overscan's fixed positions), and the frequency that explains most of the
/// overscan is found by search near the bin.
struct OverscanLines {
    let rows: Int
    let blockWidth: Int
    /// Position of the first overscan column within the block, and how many there are.
    let first: Int
    let count: Int
    /// The overscan, four columns to a lane group (zero beyond the last
    /// column): lanes[y * groups + g] holds columns 4g..<4g+4 of row y.
    /// Float: the recurrences run over a quarter of the rows each, where
    /// single precision keeps the transform to about 1e-5 relative.
    private let lanes: [SIMD4<Float>]
    private let groups: Int
    /// Sum of the squared samples.
    let sumOfSquares: Double
    var sampleCount: Int { rows * count }

    /// `samples[y * count + m]`: the overscan column m of row y.
    init(rows: Int, blockWidth: Int, first: Int, samples: [Double]) {
        self = samples.withUnsafeBufferPointer { OverscanLines(rows: rows, blockWidth: blockWidth, first: first, samples: $0) }
    }

    init(rows: Int, blockWidth: Int, first: Int, samples: UnsafeBufferPointer<Double>) {
        self.rows = rows
        self.blockWidth = blockWidth
        self.first = first
        let count = blockWidth - first
        self.count = count
        groups = (count + 3) / 4
        let groups = self.groups, v = samples
        lanes = [SIMD4<Float>](unsafeUninitializedCapacity: rows * groups) { out, n in
            for y in 0..<rows {
                for g in 0..<groups {
                    let m = 4 * g
                    out[y * groups + g] = m + 4 <= count
                        ? SIMD4<Float>(UnsafeRawPointer(v.baseAddress! + y * count + m).loadUnaligned(as: SIMD4<Double>.self))
                        : SIMD4<Float>((0..<4).map { m + $0 < count ? Float(v[y * count + m + $0]) : 0 })
                }
            }
            n = rows * groups
        }
        // Four partial sums: one chain of dependent adds would wait on each.
        var sums = SIMD4<Double>.zero
        var k = 0
        while k + 4 <= v.count {
            let x = UnsafeRawPointer(v.baseAddress! + k).loadUnaligned(as: SIMD4<Double>.self)
            sums += x * x
            k += 4
        }
        var sum = sums.sum()
        while k < v.count { sum += v[k] * v[k]; k += 1 }
        sumOfSquares = sum
    }

    /// Sum over the overscan positions s of exp(-i phi s).
    func positions(_ phi: Double) -> Complex<Double> {
        // Sum_{k<K} e^{-ixk} = e^{-ix(K-1)/2} sin(xK/2) / sin(x/2): no cancellation near 0.
        // The two sums' phases and the first position's join in one rotation.
        func geometric(_ x: Double, _ terms: Int) -> (ratio: Double, phase: Double) {
            let half = remainder(x, 2 * Double.pi) / 2, s = sin(half)
            if abs(s) < 1e-12 { return (Double(terms), 0) }
            return (sin(half * Double(terms)) / s, -half * Double(terms - 1))
        }
        let columns = geometric(phi, count), rowSum = geometric(phi * Double(blockWidth), rows)
        let ratio = columns.ratio * rowSum.ratio, phase = columns.phase + rowSum.phase - remainder(phi * Double(first), 2 * Double.pi)
        return Complex(ratio * cos(phase), ratio * sin(phase))
    }

    /// Sum over the overscan positions s of v_s exp(-i omega s): Goertzel
    /// recurrences down the overscan columns at the row frequency, four
    /// columns to a vector and four row segments interleaved (independent
    /// chains, so the recurrence's latency is hidden).
    func transform(_ omega: Double) -> Complex<Double> {
        let theta = omega * Double(blockWidth), c = Float(2 * cos(theta)), cosTheta = cos(theta), sinTheta = sin(theta)
        let length = rows / 4
        // e^{-i theta end} at each segment's last row (segments `length` rows
        // apart), and at the last row for the rows left over.
        func turn(_ end: Int) -> Complex<Double> { Complex(cos(theta * Double(end)), -sin(theta * Double(end))) }
        let step = turn(length), turnA = turn(length - 1), turnB = turnA * step, turnC = turnB * step, turnD = turnC * step
        let lastTurn = turn(rows - 1)
        var total = Complex<Double>.zero
        for g in 0..<groups {
            var re = SIMD4<Double>.zero, im = SIMD4<Double>.zero
            // Adds a segment's Sum_y v_y e^{-i theta y}, from its recurrence's last
            // two states (s1 - e^{-i theta} s2 is the sum with e^{i theta (end - y)})
            // and e^{-i theta end}.
            func finish(_ f1: SIMD4<Float>, _ f2: SIMD4<Float>, _ rotation: Complex<Double>) {
                let s1 = SIMD4<Double>(f1), s2 = SIMD4<Double>(f2)
                let yr = s1 - cosTheta * s2, yi = sinTheta * s2
                re += yr * rotation.real - yi * rotation.imaginary
                im += yr * rotation.imaginary + yi * rotation.real
            }
            lanes.withUnsafeBufferPointer { v in
                var a1 = SIMD4<Float>.zero, a2 = a1, b1 = a1, b2 = a1, c1 = a1, c2 = a1, d1 = a1, d2 = a1
                var i = g, stride = length * groups
                for _ in 0..<length {
                    let a0 = v[i] + c * a1 - a2, b0 = v[i + stride] + c * b1 - b2
                    let c0 = v[i + 2 * stride] + c * c1 - c2, d0 = v[i + 3 * stride] + c * d1 - d2
                    (a2, a1, b2, b1, c2, c1, d2, d1) = (a1, a0, b1, b0, c1, c0, d1, d0)
                    i += groups
                }
                if length > 0 {
                    finish(a1, a2, turnA)
                    finish(b1, b2, turnB)
                    finish(c1, c2, turnC)
                    finish(d1, d2, turnD)
                }
                // Rows left over by the four segments.
                var t1 = SIMD4<Float>.zero, t2 = t1
                i = 4 * length * groups + g
                stride = groups
                for _ in (4 * length)..<rows {
                    let t0 = v[i] + c * t1 - t2
                    (t2, t1) = (t1, t0)
                    i += stride
                }
                if rows > 4 * length { finish(t1, t2, lastTurn) }
            }
            // Each column's phase e^{-i omega s}, a column apart.
            let phase = -omega * Double(first + 4 * g)
            var rotation = Complex<Double>(cos(phase), sin(phase))
            let column = Complex<Double>(cos(omega), -sin(omega))
            for lane in 0..<4 where 4 * g + lane < count {
                total += Complex(re[lane], im[lane]) * rotation
                rotation = rotation * column
            }
        }
        return total
    }

    /// The normal equations of a joint least-squares fit of lines to the
    /// overscan, grown a line at a time (a new line adds one block row).
    struct NormalEquations {
        private(set) var omegas: [Double] = []
        private(set) var size = 0
        private(set) var g: [Double] = []
        private(set) var r: [Double] = []

        /// G^-1, column by column; nil when singular.
        func inverse() -> [Double]? {
            var out = [Double](repeating: 0, count: size * size)
            for j in 0..<size {
                var e = [Double](repeating: 0, count: size)
                e[j] = 1
                guard let column = solve(g, e, size), column.allSatisfy({ $0.isFinite }) else { return nil }
                for i in 0..<size { out[i * size + j] = column[i] }
            }
            return out
        }

        func adding(_ omega: Double, transform: Complex<Double>, over overscan: OverscanLines) -> NormalEquations {
            let old = size, n = size + 2
            var next = NormalEquations()
            next.omegas = omegas + [omega]
            next.size = n
            next.g = [Double](repeating: 0, count: n * n)
            for i in 0..<old { for j in 0..<old { next.g[i * n + j] = g[i * old + j] } }
            next.r = r + [transform.real, -transform.imaginary]
            let i = omegas.count
            for (j, other) in next.omegas.enumerated() {
                let minus = overscan.positions(omega - other), plus = overscan.positions(omega + other)
                // Sums of cos_i cos_j, sin_i sin_j, cos_i sin_j and sin_i cos_j.
                let cc = (minus.real + plus.real) / 2, ss = (minus.real - plus.real) / 2
                let cs = (minus.imaginary - plus.imaginary) / 2, sc = (-minus.imaginary - plus.imaginary) / 2
                next.g[(2 * i) * n + 2 * j] = cc
                next.g[(2 * i + 1) * n + 2 * j + 1] = ss
                next.g[(2 * i) * n + 2 * j + 1] = cs
                next.g[(2 * i + 1) * n + 2 * j] = sc
                next.g[(2 * j) * n + 2 * i] = cc
                next.g[(2 * j + 1) * n + 2 * i + 1] = ss
                next.g[(2 * j + 1) * n + 2 * i] = cs
                next.g[(2 * j) * n + 2 * i + 1] = sc
            }
            return next
        }

        /// The lines' coefficients; nil when their frequencies are too close
        /// to tell apart over the overscan.
        func solved() -> [InterferenceLine]? {
            guard size > 0 else { return [] }
            guard let x = solve(g, r, size), x.allSatisfy({ $0.isFinite }) else { return nil }
            return omegas.indices.map { InterferenceLine(omega: omegas[$0], a: x[2 * $0], b: x[2 * $0 + 1]) }
        }
    }

    /// The lines near `guesses` (radians per sample, each known to within
    /// its `within` bins of the readout, 2 pi / (rows * blockWidth) each), found
    /// strongest guess first: each frequency is the one at which the joint fit
    /// with the lines found before it explains the most. A line is kept when
    /// it explains `significance` times the variance left unexplained (per
    /// sample) and does not land on an earlier line; at most `maxLines` are.
    func refine(_ guesses: [(omega: Double, within: Double)], significance: Double, maxLines: Int = .max) -> [InterferenceLine] {
        let bin = 2 * Double.pi / Double(rows * blockWidth)
        var accepted = NormalEquations()
        var explained = 0.0
        // What a candidate line adds to the accepted ones' fit, through the
        // Schur complement of their normal equations (G^-1 and G^-1 r kept):
        // no system is rebuilt or solved per trial frequency.
        var inverse: [Double] = [], solution: [Double] = []
        var cross = [Double](), reduced = [Double]()
        func gain(_ omega: Double) -> Double {
            let m = accepted.size
            let t = transform(omega)
            var u0 = t.real, u1 = -t.imaginary
            let own = positions(2 * omega), count = Double(sampleCount)
            var d00 = (count + own.real) / 2, d11 = (count - own.real) / 2, d01 = -own.imaginary / 2
            if m > 0 {
                // C: the accepted lines' cosines and sines against the candidate's.
                for (p, other) in accepted.omegas.enumerated() {
                    let minus = positions(omega - other), plus = positions(omega + other)
                    cross[(2 * p) * 2] = (minus.real + plus.real) / 2
                    cross[(2 * p + 1) * 2 + 1] = (minus.real - plus.real) / 2
                    cross[(2 * p + 1) * 2] = (minus.imaginary - plus.imaginary) / 2
                    cross[(2 * p) * 2 + 1] = (-minus.imaginary - plus.imaginary) / 2
                }
                // Y = G^-1 C; S = D - C^T Y; u = r_new - C^T x.
                for i in 0..<m {
                    var y0 = 0.0, y1 = 0.0
                    for k in 0..<m {
                        y0 += inverse[i * m + k] * cross[k * 2]
                        y1 += inverse[i * m + k] * cross[k * 2 + 1]
                    }
                    reduced[i * 2] = y0
                    reduced[i * 2 + 1] = y1
                }
                for k in 0..<m {
                    d00 -= cross[k * 2] * reduced[k * 2]
                    d11 -= cross[k * 2 + 1] * reduced[k * 2 + 1]
                    d01 -= cross[k * 2] * reduced[k * 2 + 1]
                    u0 -= cross[k * 2] * solution[k]
                    u1 -= cross[k * 2 + 1] * solution[k]
                }
            }
            let det = d00 * d11 - d01 * d01
            guard det > 1e-12 * max(d00 * d11, 1e-300) else { return -.infinity }
            return (u0 * u0 * d11 - 2 * u0 * u1 * d01 + u1 * u1 * d00) / det
        }
        for (guess, within) in guesses where accepted.omegas.count < maxLines {
            // A guess that explains nothing significant where it stands is not
            // searched (the spectrum also peaks at lines' side lobes and copies).
            let noise = (sumOfSquares - explained) / Double(max(1, sampleCount - 2 * accepted.omegas.count))
            var best = guess, bestGain = gain(guess)
            guard bestGain > 0.25 * significance * noise else { continue }
            if within < 0.5 {
                // Known to within a fraction of the main lobe (a bin wide),
                // where the gain is nearly a parabola: its vertex from the
                // guess and two points a quarter of that either side, again
                // from the best point while the vertex lies outside them.
                let step = within * bin / 4, reach = within * bin
                for _ in 0..<3 {
                    let centre = best, centreGain = bestGain
                    let left = gain(centre - step), right = gain(centre + step)
                    let curvature = left + right - 2 * centreGain
                    let shift = curvature < 0 ? step * 0.5 * (left - right) / curvature : 0
                    if curvature < 0 && abs(shift) <= step {
                        // Bracketed: the parabola's vertex and height stand for the peak.
                        best = min(guess + reach, max(guess - reach, centre + shift))
                        bestGain = centreGain - (right - left) * (right - left) / (8 * curvature)
                        break
                    }
                    var tries = [(centre - step, left), (centre + step, right)]
                    if curvature < 0 {
                        let vertex = min(guess + reach, max(guess - reach, centre + shift))
                        tries.append((vertex, gain(vertex)))
                    }
                    for (omega, e) in tries where e > bestGain { (best, bestGain) = (omega, e) }
                }
            } else {
                // Half-bin steps over the interval (the peak is a bin wide), then
                // parabolas through the best point and its neighbours on shrinking steps.
                var step = bin / 2
                let reach = Int((within * 2).rounded(.up))
                for k in -reach...reach where k != 0 {
                    let e = gain(guess + Double(k) * step)
                    if e > bestGain { (best, bestGain) = (guess + Double(k) * step, e) }
                }
                step /= 4
                for _ in 0..<2 {
                    let centre = best, centreGain = bestGain
                    let left = gain(centre - step), right = gain(centre + step)
                    var tries = [(centre - step, left), (centre + step, right)]
                    let curvature = left + right - 2 * centreGain
                    if curvature < 0 {
                        let vertex = centre + step * min(1, max(-1, 0.5 * (left - right) / curvature))
                        tries.append((vertex, gain(vertex)))
                    }
                    for (omega, e) in tries where e > bestGain { (best, bestGain) = (omega, e) }
                    step /= 4
                }
            }
            let left = (sumOfSquares - explained - bestGain) / Double(max(1, sampleCount - 2 * (accepted.omegas.count + 1)))
            guard !accepted.omegas.contains(where: { abs($0 - best) < bin }), bestGain > significance * left else { continue }
            let next = accepted.adding(best, transform: transform(best), over: self)
            guard let nextInverse = next.inverse() else { continue }
            accepted = next
            inverse = nextInverse
            let m = accepted.size
            solution = (0..<m).map { i in (0..<m).reduce(0) { $0 + inverse[i * m + $1] * accepted.r[$1] } }
            explained = zip(solution, accepted.r).reduce(0) { $0 + $1.0 * $1.1 }
            cross = [Double](repeating: 0, count: 2 * m)
            reduced = cross
        }
        return accepted.solved() ?? []
    }
}

extension OverscanLines {
    /// The level a bin of the overscan's residual periodogram (each column's
    /// power spectrum down the rows, summed over the `columns`, divided by
    /// its expectation) stays under in noise alone, but for a
    /// `falseAlarms` chance over `bins` bins: a chi-square quantile with
    /// 2 x columns degrees of freedom (Wilson-Hilferty), per degree.
    static func noiseLevel(columns: Int, bins: Int, falseAlarms: Double = 1e-3) -> Double {
        let k = Double(2 * columns)
        // The standard normal deviate for the tail p: an inverse of erfc by Newton steps.
        let p = falseAlarms / Double(max(1, bins))
        var z = (-2 * log(p)).squareRoot()
        for _ in 0..<20 {
            let tail = 0.5 * erfc(z / 2.0.squareRoot())
            let density = exp(-z * z / 2) / (2 * Double.pi).squareRoot()
            z += (tail - p) / density
        }
        let c = 2 / (9 * k)
        return pow(1 - c + z * c.squareRoot(), 3)
    }

    /// The median of a chi-square variable with 2 x columns degrees of
    /// freedom, per degree (what a noise-only periodogram's median bin is,
    /// relative to the mean).
    static func noiseMedian(columns: Int) -> Double {
        let c = 2 / (9 * Double(2 * columns))
        return pow(1 - c, 3)
    }
}
