import Foundation
import Numerics
import Recon
import SwiftFFTW

/// Readout offsets: each channel's polynomial through its overscan columns,
/// and the background pixels the interference search may use.
extension FrameCleaner {
    /// The offset fits and what the overscan says of the frame.
    struct Offsets {
        /// Per channel: the polynomial's coefficients in the normalized readout sequence.
        var coefficients: [[Float]]
        /// A background sample stays within this times its pixel's `backgroundScale`.
        var bound: Float
    }

    /// Each channel's offset: a least-squares polynomial in the normalized
    /// readout sequence through its overscan. The overscan positions are the
    /// same on every frame and channel, so each coefficient is one weighted
    /// sum of the samples (`offsetWeights`, made once).
    func fitOffsets() -> Offsets {
        let L = layout, cw = L.columnsPerChannel, bw = L.blockWidth, o = L.overscan, count = L.rows * o
        let terms = offsetWeights.count / max(1, count)
        let step = Float(1 / Double(L.sequenceLength))
        var coefficients = [[Float]](repeating: [0, 0, 0, 0], count: L.channels)
        var residualSquares = 0.0
        offsetWeights.withUnsafeBufferPointer { weights in
            for ch in 0..<L.channels {
                let s = overscanSamples.baseAddress! + ch * count
                var c: [Float] = [0, 0, 0, 0]
                for i in 0..<terms {
                    // Four partial sums: one chain of dependent adds would wait on each.
                    var sums = SIMD4<Double>.zero
                    let w = weights.baseAddress! + i * count
                    var k = 0
                    while k + 4 <= count {
                        sums += UnsafeRawPointer(w + k).loadUnaligned(as: SIMD4<Double>.self)
                            * UnsafeRawPointer(s + k).loadUnaligned(as: SIMD4<Double>.self)
                        k += 4
                    }
                    var sum = sums.sum()
                    while k < count { sum += w[k] * s[k]; k += 1 }
                    c[i] = Float(sum)
                }
                coefficients[ch] = c
                // The offset subtracted in Float, at the positions the data pass computes.
                let (c0, c1, c2, c3) = (c[0], c[1], c[2], c[3])
                for y in 0..<L.rows {
                    let t0 = Float(y * bw) * step
                    for m in 0..<o {
                        let t = t0 + Float(cw + m) * step
                        s[y * o + m] = Double(Float(s[y * o + m]) - (((c3 * t + c2) * t + c1) * t + c0))
                    }
                }
                // Four partial sums, as above.
                var squares = SIMD4<Double>.zero
                var k = 0
                while k + 4 <= count {
                    let r = UnsafeRawPointer(s + k).loadUnaligned(as: SIMD4<Double>.self)
                    squares += r * r
                    k += 4
                }
                residualSquares += squares.sum()
                while k < count { residualSquares += s[k] * s[k]; k += 1 }
            }
        }
        // Without darks the noise per pixel is unknown: the overscan gives a typical one.
        let typicalNoise = count > 0 ? Float(max((residualSquares / Double(L.channels * count)).squareRoot(), 1e-3)) : 3
        let bound = Float(options.backgroundSigma) * (noise.isEmpty ? typicalNoise : 1)
        return Offsets(coefficients: coefficients, bound: bound)
    }

    /// Channel ch's overscan less the dark and its offset, `[y * overscan + m]` (after `fitOffsets`).
    func overscan(of ch: Int) -> UnsafeBufferPointer<Double> {
        let count = layout.rows * layout.overscan
        return UnsafeBufferPointer(rebasing: overscanSamples[(ch * count)..<((ch + 1) * count)])
    }

    /// Per polynomial term i and overscan sample k (`[i * count + k]`), its
    /// weight in the least-squares coefficient: row i of (A^T A)^-1 A^T, A
    /// the powers of each sample's position. Empty when the offset is not fitted.
    static func offsetWeights(layout L: ReadoutLayout, order: Int) -> [Double] {
        let o = L.overscan, count = L.rows * o, terms = order + 1
        guard order > 0, o > 0 else { return [] }
        let step = Float(1 / Double(L.sequenceLength))
        var powers = [Double](repeating: 0, count: terms * count)
        for y in 0..<L.rows {
            let t0 = Float(y * L.blockWidth) * step
            for m in 0..<o {
                let t = Double(t0 + Float(L.columnsPerChannel + m) * step)
                var p = 1.0
                for i in 0..<terms { powers[i * count + y * o + m] = p; p *= t }
            }
        }
        var gram = [Double](repeating: 0, count: terms * terms)
        for i in 0..<terms { for j in 0..<terms {
            gram[i * terms + j] = (0..<count).reduce(0) { $0 + powers[i * count + $1] * powers[j * count + $1] }
        } }
        // Columns of the inverse, then each weight row.
        var inverse = [Double](repeating: 0, count: terms * terms)
        for j in 0..<terms {
            var e = [Double](repeating: 0, count: terms)
            e[j] = 1
            guard let column = solve(gram, e, terms) else { return [] }
            for i in 0..<terms { inverse[i * terms + j] = column[i] }
        }
        var weights = [Double](repeating: 0, count: terms * count)
        for i in 0..<terms { for k in 0..<count {
            weights[i * count + k] = (0..<terms).reduce(0) { $0 + inverse[i * terms + $1] * powers[$1 * count + k] }
        } }
        return weights
    }

    /// Each channel's overscan less the dark mean, for the offset fits
    /// (`[(channel * rows + y) * overscan + m]`, the layout of
    /// `darkOverscan`); non-finite samples taken as 0 (`finite` false if
    /// any). A few strided reads: the image pixels are read once, by the
    /// photon pass, which subtracts the dark there.
    func gatherOverscan(_ raw: UnsafeBufferPointer<Float>) -> Bool {
        let L = layout, cw = L.columnsPerChannel, bw = L.blockWidth, o = L.overscan
        var bad: UInt32 = 0
        var badLanes = SIMDMask<SIMD4<Int32>>(repeating: false)
        let largest = SIMD4<Float>(repeating: .greatestFiniteMagnitude)
        let r = raw.baseAddress!, d = darkOverscan.baseAddress!, g = overscanSamples.baseAddress!
        // Row by row, so the frame is read in order; four columns to a load,
        // so one load steps by a block's width and the prefetcher follows it.
        for y in 0..<L.rows {
            for ch in 0..<L.channels {
                let source = r + y * L.rawColumns + ch * bw + cw, k = (ch * L.rows + y) * o
                var m = 0
                while m + 4 <= o {
                    let v = UnsafeRawPointer(source + m).loadUnaligned(as: SIMD4<Float>.self)
                    let finite = (v .<= largest) .& (v .>= -largest)
                    badLanes = badLanes .| .!finite
                    let dv = v.replacing(with: 0, where: .!finite) - UnsafeRawPointer(d + k + m).loadUnaligned(as: SIMD4<Float>.self)
                    UnsafeMutableRawPointer(g + k + m).storeBytes(of: SIMD4<Double>(dv), as: SIMD4<Double>.self)
                    m += 4
                }
                while m < o {
                    let v = source[m]
                    bad |= v.isFinite ? 0 : 1
                    g[k + m] = Double((v.isFinite ? v : 0) - d[k + m])
                    m += 1
                }
            }
        }
        return bad == 0 && !any(badLanes)
    }

    /// One channel's block of row y less the dark mean, non-finite values taken as 0.
    @inline(__always)
    func darkSubtracted(_ raw: UnsafePointer<Float>, row y: Int, channel ch: Int, into out: UnsafeMutablePointer<Float>) {
        let first = y * layout.rawColumns + ch * layout.blockWidth
        let x = raw + first, d = dark.baseAddress! + first
        for k in 0..<layout.blockWidth { out[k] = (x[k].isFinite ? x[k] : 0) - d[k] }
    }

    /// For the line search: each channel's background samples (less its
    /// offset) packed in readout order, zero elsewhere (with their indicator
    /// where the lines are fitted to the bins).
    func selectBackground(_ raw: UnsafeBufferPointer<Float>, _ offsets: Offsets) {
        let L = layout, cw = L.columnsPerChannel, bw = L.blockWidth
        let n = transformLength, bound = offsets.bound
        let packed = UnsafeMutableRawPointer(sequence.baseAddress).assumingMemoryBound(to: Float.self)
        let scale = backgroundScale.baseAddress!
        let level = UnsafeMutablePointer<Float>.allocate(capacity: bw), x = UnsafeMutablePointer<Float>.allocate(capacity: bw)
        defer { level.deallocate(); x.deallocate() }
        for y in 0..<L.rows {
            for ch in 0..<L.channels {
                let first = y * L.rawColumns + ch * bw
                offsetRow(offsets.coefficients[ch], row: y, count: bw, into: level)
                darkSubtracted(raw.baseAddress!, row: y, channel: ch, into: x)
                let limit = scale + first
                if linesFromOverscan {
                    // Overscan samples carry no signal: always background.
                    let s = packed + ch * n + y * bw
                    for k in 0..<cw {
                        let v = x[k] - level[k]
                        s[k] = abs(v) < bound * limit[k] ? v : 0
                    }
                    for k in cw..<bw { s[k] = x[k] - level[k] }
                    continue
                }
                // Real part: the background samples; imaginary: which samples they are.
                let s = packed + 2 * (ch * n + y * bw)
                for k in 0..<cw {
                    let v = x[k] - level[k]
                    let quiet = abs(v) < bound * limit[k]
                    s[2 * k] = quiet ? v : 0
                    s[2 * k + 1] = quiet ? 1 : 0
                }
                for k in cw..<bw {
                    s[2 * k] = x[k] - level[k]
                    s[2 * k + 1] = 1
                }
            }
        }
    }

    /// A channel's offset over the first `count` columns of row y's block:
    /// the cubic in the readout sequence at the first and last column, linear
    /// between. Over one block (a 1/rows part of the sequence) the cubic's
    /// curvature moves it by under 1e-6 of the drift, so the line is exact
    /// for all purposes and saves the cubic per pixel.
    @inline(__always)
    func offsetRow(_ c: [Float], row y: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
        let step = Float(1 / Double(layout.sequenceLength))
        let (c0, c1, c2, c3) = (c[0], c[1], c[2], c[3])
        func offset(_ t: Float) -> Float { ((c3 * t + c2) * t + c1) * t + c0 }
        let t0 = Float(y * layout.blockWidth) * step
        let first = offset(t0), slope = count > 1 ? (offset(t0 + Float(count - 1) * step) - first) / Float(count - 1) : 0
        // Column numbers as Float lanes: an Int-to-Float conversion per element does not vectorize.
        var column = SIMD8<Float>(0, 1, 2, 3, 4, 5, 6, 7)
        var k = 0
        while k + 8 <= count {
            UnsafeMutableRawPointer(out + k).storeBytes(of: first + slope * column, as: SIMD8<Float>.self)
            column += 8
            k += 8
        }
        while k < count {
            out[k] = first + slope * Float(k)
            k += 1
        }
    }
}
