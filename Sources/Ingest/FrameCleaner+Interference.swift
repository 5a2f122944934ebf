import Foundation
import Numerics
import Recon
import SwiftFFTW

/// Interference lines: those the darks showed, checked against each
/// frame's overscan, or searched for in the frame's readout spectrum.
extension FrameCleaner {
    /// The darks' lines fitted on each channel's overscan, when they explain
    /// it: no bin of the residual's periodogram (each overscan column down
    /// the rows, Hann-windowed so a strong line's leakage falls fast and one
    /// between bins loses little) stands above what noise reaches once in a
    /// thousand frames.
    /// Nil when one does: the frame has a line the darks did not show, and
    /// the readout spectrum must be searched.
    func linesIfExplained() throws -> [[InterferenceLine]]? {
        guard let check = overscanCheck else { return nil }
        let L = layout, o = L.overscan, cw = L.columnsPerChannel, r = check.length, count = L.rows * o
        let series = UnsafeMutableRawPointer(overscanSeries.baseAddress).assumingMemoryBound(to: Float.self)
        var found = [[InterferenceLine]](repeating: [], count: L.channels)
        try timed("interference: darks' lines: fits") {
            for ch in 0..<L.channels where liveChannels[ch] {
                let known = ch < darkLines.count ? darkLines[ch] : []
                guard !known.isEmpty else { continue }
                let fit = OverscanLines(rows: L.rows, blockWidth: L.blockWidth, first: cw, samples: overscan(of: ch))
                found[ch] = fit.refine(known.map { (omega: $0, within: 0.25) },
                                       significance: options.spikeThreshold * options.spikeThreshold,
                                       maxLines: options.maxSpikesPerChannel)
            }
        }
        // The residual, windowed, each overscan column down the rows: the
        // samples, less each line (per row its cosine and sine weights A, B,
        // turned row to row four rows to a vector, then over each column),
        // times the window.
        let rows = L.rows
        let weightA = UnsafeMutablePointer<Float>.allocate(capacity: rows), weightB = UnsafeMutablePointer<Float>.allocate(capacity: rows)
        defer { weightA.deallocate(); weightB.deallocate() }
        overscanWindow.withUnsafeBufferPointer { window in
            for ch in 0..<L.channels where liveChannels[ch] {
                let v = overscanSamples.baseAddress! + ch * count
                for m in 0..<o {
                    let column = series + (ch * o + m) * r
                    for y in 0..<rows { column[y] = Float(v[y * o + m]) }
                }
                for line in found[ch] {
                    let theta = line.omega * Double(L.blockWidth)
                    var c = SIMD4<Double>(1, cos(theta), cos(2 * theta), cos(3 * theta))
                    var s = SIMD4<Double>(0, sin(theta), sin(2 * theta), sin(3 * theta))
                    let stepC = cos(4 * theta), stepS = sin(4 * theta)
                    var y = 0
                    while y + 4 <= rows {
                        UnsafeMutableRawPointer(weightA + y).storeBytes(of: SIMD4<Float>(line.a * c + line.b * s), as: SIMD4<Float>.self)
                        UnsafeMutableRawPointer(weightB + y).storeBytes(of: SIMD4<Float>(line.b * c - line.a * s), as: SIMD4<Float>.self)
                        (c, s) = (c * stepC - s * stepS, s * stepC + c * stepS)
                        y += 4
                    }
                    while y < rows {
                        let (cy, sy) = (cos(theta * Double(y)), sin(theta * Double(y)))
                        weightA[y] = Float(line.a * cy + line.b * sy)
                        weightB[y] = Float(line.b * cy - line.a * sy)
                        y += 1
                    }
                    for m in 0..<o {
                        let cm = Float(cos(line.omega * Double(cw + m))), sm = Float(sin(line.omega * Double(cw + m)))
                        let column = series + (ch * o + m) * r
                        for y in 0..<rows { column[y] -= weightA[y] * cm + weightB[y] * sm }
                    }
                }
                for m in 0..<o {
                    let column = series + (ch * o + m) * r
                    for y in 0..<rows { column[y] *= window[y] }
                }
            }
        }
        try check.execute(overscanSeries, overscanSpectra)
        let bins = r / 2 + 1, nearRowRate = 4 * (r / L.rows) + 1
        let s = UnsafeMutableRawPointer(overscanSpectra.baseAddress).assumingMemoryBound(to: Float.self)
        let power = UnsafeMutableBufferPointer<Float>.allocate(capacity: bins)
        let order = UnsafeMutableBufferPointer<Float>.allocate(capacity: bins)
        defer { power.deallocate(); order.deallocate() }
        for ch in 0..<L.channels where liveChannels[ch] {
            let p = power.baseAddress!
            p.update(repeating: 0, count: bins)
            for m in 0..<o {
                let z = s + 2 * (ch * o + m) * bins
                for k in 0..<bins { p[k] += z[2 * k] * z[2 * k] + z[2 * k + 1] * z[2 * k + 1] }
            }
            // Lines within 2 readout bins of a row-rate harmonic (where the
            // darks and the search look for none, as the fixed pattern and
            // the background selection peak there) alias to within 2 bins of
            // 0 down the rows; the window's main lobe is 2 bins wide each side.
            var largest: Float = 0
            for k in nearRowRate..<bins { largest = max(largest, p[k]) }
            _ = order.update(fromContentsOf: power)
            let median = select(bins / 2, in: order)
            if largest > Float(overscanAlarm) * median { return nil }
        }
        return found
    }

    /// Per channel: the background readout sequence (signal and bad pixels
    /// zeroed) is Fourier transformed; bins standing `spikeThreshold` times
    /// above the band's median are interference lines. With enough overscan,
    /// each line's frequency (a real line lies between bins) and all their
    /// amplitudes are fitted there; without, each bin is fitted by least
    /// squares to the background samples (CLEAN). The lines are subtracted
    /// from the whole channel.
    func removeSpikes() throws -> [[InterferenceLine]] {
        var found = [[InterferenceLine]](repeating: [], count: layout.channels)
        let L = layout, n = transformLength, bw = L.blockWidth
        try timed("interference: transform") {
            if let lines = sequenceLines { try lines.execute(sequence, sequenceSpectrum) }
            if let plan = sequencePlan { try plan.execute(sequence.baseAddress, sequenceSpectrum.baseAddress, normalization: .none) }
        }
        let lowest = max(1, Int(options.spikeBand * Double(n / 2)))
        guard lowest < n / 2 else { return found }
        let s = UnsafeMutableRawPointer(sequenceSpectrum.baseAddress).assumingMemoryBound(to: Float.self)
        // Squared magnitudes (their order is the magnitudes'), Float, over pointers.
        let squares = UnsafeMutablePointer<Float>.allocate(capacity: n / 2)
        defer { squares.deallocate() }
        squares.initialize(repeating: 0, count: n / 2)
        let rowPeriod = Double(n) / Double(bw)
        for ch in 0..<L.channels where liveChannels[ch] {
            if linesFromOverscan {
                let z = s + 2 * ch * (n / 2 + 1)
                for k in lowest..<(n / 2) { squares[k] = z[2 * k] * z[2 * k] + z[2 * k + 1] * z[2 * k + 1] }
            } else {
                // V_k = (Z_k + conj Z_-k) / 2, within the band.
                let z = s + 2 * ch * n
                for k in lowest..<(n / 2) {
                    let re = (z[2 * k] + z[2 * (n - k)]) * 0.5, im = (z[2 * k + 1] - z[2 * (n - k) + 1]) * 0.5
                    squares[k] = re * re + im * im
                }
            }
            // The noise level: the median magnitude of the band (a strided
            // sample of it on long readouts), which a few lines do not move.
            let stride = max(1, (n / 2 - lowest) / 2048)
            var sample = Swift.stride(from: lowest, to: n / 2, by: stride).map { squares[$0] }
            let middle = sample.count / 2
            let median = sample.withUnsafeMutableBufferPointer { select(middle, in: $0) }
            let floor = Double(options.spikeThreshold) * Double(median).squareRoot()
            // Local maxima away from the row-rate harmonics (those are the selection itself).
            func isPeak(_ k: Int, above level: Float) -> Bool {
                squares[k] > level && squares[k] >= squares[k - 1] && (k + 1 >= n / 2 || squares[k] >= squares[k + 1])
                    && abs(Double(k) - (Double(k) / rowPeriod).rounded() * rowPeriod) > 2
            }
            var lines: [InterferenceLine] = []
            try timed("interference: fits") {
                if linesFromOverscan {
                    let level = Float(floor * floor)
                    var peaks: [(k: Int, power: Float)] = []
                    for k in lowest..<(n / 2) where isPeak(k, above: level) { peaks.append((k, squares[k])) }
                    lines = try fromOverscan(channel: ch, samples: overscan(of: ch), peaks: peaks, transformLength: n)
                } else {
                    lines = clean(Spectra(s + 2 * ch * n, n), floor: floor, lowest: lowest) { isPeak($0, above: $1) }
                }
            }
            found[ch] = lines
        }
        return found
    }

    /// CLEAN over one channel's spectra: fit the strongest candidate bin as
    /// one line by least squares over the background samples, take the
    /// fitted line's share out of the other candidates (through B, the
    /// selection's own transform), repeat. The copies a line casts through
    /// the row-periodic selection vanish with it instead of being fitted.
    func clean(_ spectrum: Spectra, floor: Double, lowest: Int, isPeak: (Int, Float) -> Bool) -> [InterferenceLine] {
        let n = spectrum.n, level = Float(0.25 * floor * floor)
        var candidates: [Int] = [], values: [Complex<Double>] = []
        for k in lowest..<(n / 2) where isPeak(k, level) {
            candidates.append(k)
            values.append(spectrum.samples(k))
        }
        var lines: [InterferenceLine] = []
        for _ in 0..<options.maxSpikesPerChannel {
            var best = -1, bestMagnitude = floor
            for (i, value) in values.enumerated() where value.length > bestMagnitude {
                best = i
                bestMagnitude = value.length
            }
            guard best >= 0 else { break }
            let k = candidates[best]
            let b0 = spectrum.indicator(0).real, b2 = spectrum.indicator(2 * k)
            let cc = (b0 + b2.real) / 2, ss = (b0 - b2.real) / 2, cs = -b2.imaginary / 2
            let vc = values[best].real, vs = -values[best].imaginary
            let det = cc * ss - cs * cs
            guard det > 1e-9 * max(cc * ss, 1) else { break }
            let a = (vc * ss - vs * cs) / det, b = (vs * cc - vc * cs) / det
            lines.append(InterferenceLine(omega: 2 * Double.pi * Double(k) / Double(n), a: a, b: b))
            for i in values.indices {
                let q = candidates[i]
                let minus = spectrum.indicator(q - k), plus = spectrum.indicator(q + k)
                // a cos + b sin on the background, transformed at q.
                let cosPart = (minus + plus) * Complex(0.5, 0)
                let sinPart = (minus - plus) * Complex(0, -0.5)
                values[i] -= cosPart * Complex(a, 0) + sinPart * Complex(b, 0)
            }
        }
        return lines
    }

    /// The channel's lines from its overscan, near the spectrum's peaks:
    /// strongest first, a peak within 3 bins of a stronger one taken as the
    /// same line (a line between bins lights both).
    func fromOverscan(channel ch: Int, samples: UnsafeBufferPointer<Double>, peaks: [(k: Int, power: Float)],
                              transformLength n: Int) throws -> [InterferenceLine] {
        let known = ch < darkLines.count ? darkLines[ch] : []
        guard !peaks.isEmpty || !known.isEmpty else { return [] }
        let L = layout, cw = L.columnsPerChannel
        let binWidth = 2 * Double.pi / Double(n)
        // The darks' lines first (each to within a quarter bin), then the
        // frame's own peaks away from them (each to within a bin).
        var guesses = known.map { (omega: $0, within: 0.25) }
        var peakBins: [Int] = []
        for peak in peaks.sorted(by: { $0.power > $1.power })
        where !peakBins.contains(where: { abs($0 - peak.k) <= 3 }) && !known.contains(where: { abs($0 / binWidth - Double(peak.k)) <= 3 }) {
            peakBins.append(peak.k)
            // Beyond the lines, peaks are their side lobes and copies: each costs a look.
            if peakBins.count == 3 * options.maxSpikesPerChannel { break }
        }
        guesses += peakBins.map { (omega: Double($0) * binWidth, within: 1.0) }
        let fit = OverscanLines(rows: L.rows, blockWidth: L.blockWidth, first: cw, samples: samples)
        return try timedValue("interference: refine") {
            fit.refine(guesses, significance: options.spikeThreshold * options.spikeThreshold, maxLines: options.maxSpikesPerChannel)
        }
    }

    /// Each channel's interference lines evaluated over the data columns a
    /// row at a time, for the photon pass to subtract. With s = y w + j (w
    /// the block width), a line a cos(omega s) + b sin(omega s) is
    /// A_y cos(omega j) + B_y sin(omega j): two coefficients per row (a
    /// rotation of the last row's) and two tables over j, so the inner loop
    /// is plain Float arithmetic.
    final class RowLines {
        let columns: Int
        /// Per channel, the index of its first line in the flat arrays below, and one past its last.
        let start: [Int]
        /// Per line: cos and sin of omega j over the columns j.
        let tables: UnsafeMutablePointer<Float>
        /// Per line: a, b, and cos, sin of omega w (w the block width).
        let constants: UnsafeMutablePointer<Double>
        /// Per line: cos and sin of omega w y for the current row.
        let phase: UnsafeMutablePointer<Double>

        init(_ lines: [[InterferenceLine]], columns: Int, blockWidth: Int) {
            self.columns = columns
            var start = [0]
            for channel in lines { start.append(start.last! + channel.count) }
            self.start = start
            let all = lines.flatMap { $0 }
            tables = .allocate(capacity: max(1, 2 * columns * all.count))
            constants = .allocate(capacity: max(1, 4 * all.count))
            phase = .allocate(capacity: max(1, 2 * all.count))
            for (l, line) in all.enumerated() {
                for j in 0..<columns {
                    tables[2 * l * columns + j] = Float(cos(line.omega * Double(j)))
                    tables[(2 * l + 1) * columns + j] = Float(sin(line.omega * Double(j)))
                }
                constants[4 * l] = line.a
                constants[4 * l + 1] = line.b
                constants[4 * l + 2] = cos(line.omega * Double(blockWidth))
                constants[4 * l + 3] = sin(line.omega * Double(blockWidth))
                phase[2 * l] = 1
                phase[2 * l + 1] = 0
            }
        }

        deinit {
            tables.deallocate()
            constants.deallocate()
            phase.deallocate()
        }

        /// Adds the channel's lines over its data columns of the next row
        /// (rows in order, once per channel).
        @inline(__always)
        func add(channel ch: Int, into out: UnsafeMutablePointer<Float>) {
            let n = columns
            for l in start[ch]..<start[ch + 1] {
                let a = constants[4 * l], b = constants[4 * l + 1], stepC = constants[4 * l + 2], stepS = constants[4 * l + 3]
                let c = phase[2 * l], s = phase[2 * l + 1]
                let A = Float(a * c + b * s), B = Float(b * c - a * s)
                let cosines = tables + 2 * l * n, sines = cosines + n
                for j in 0..<n { out[j] += A * cosines[j] + B * sines[j] }
                phase[2 * l] = c * stepC - s * stepS
                phase[2 * l + 1] = s * stepC + c * stepS
            }
        }
    }

    /// The transforms of a channel's background samples (V) and of its
    /// background indicator (B), packed as the real and imaginary parts of
    /// one complex transform and separated by Hermitian symmetry.
    struct Spectra {
        let z: UnsafeMutablePointer<Float>
        let n: Int
        init(_ z: UnsafeMutablePointer<Float>, _ n: Int) { self.z = z; self.n = n }

        /// Indices here lie within -n..<2n (sums and differences of bins): wrap without division.
        @inline(__always)
        func at(_ k: Int) -> (Double, Double, Double, Double) {
            let a = k < 0 ? k + n : (k >= n ? k - n : k), b = a == 0 ? 0 : n - a
            return (Double(z[2 * a]), Double(z[2 * a + 1]), Double(z[2 * b]), Double(z[2 * b + 1]))
        }
        /// V_k = (Z_k + conj Z_-k) / 2.
        func samples(_ k: Int) -> Complex<Double> {
            let (ar, ai, br, bi) = at(k)
            return Complex((ar + br) / 2, (ai - bi) / 2)
        }
        /// B_k = (Z_k - conj Z_-k) / 2i.
        func indicator(_ k: Int) -> Complex<Double> {
            let (ar, ai, br, bi) = at(k)
            return Complex((ai + bi) / 2, -(ar - br) / 2)
        }
    }
}
