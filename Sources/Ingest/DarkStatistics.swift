import Foundation
import Recon
import SwiftFFTW

/// Per-pixel mean and variance of dark frames: Welford's update frame by
/// frame on each rank, merged over the ranks with Chan's formula, so the
/// result does not depend on how the darks were split. Given the readout
/// layout, also each channel's readout power spectrum summed over the darks,
/// where the interference lines stand clear: a dark frame is background
/// everywhere, so no selection casts copies of them.
public struct DarkStatistics: Sendable, Equatable {
    public private(set) var count: Int
    public private(set) var mean: [Double]
    /// Sum of squared deviations from the mean.
    public private(set) var m2: [Double]
    /// Per channel, |X_k|^2 for k in 0...n/2 of the zero-padded readout
    /// sequence (n = `FFTW.fastLength` of its length), summed over the darks;
    /// empty without a layout.
    public private(set) var readoutPower: [Double]
    public let readout: ReadoutLayout?
    private let spectra: ReadoutSpectra?

    public init(pixels: Int, readout: ReadoutLayout? = nil) {
        count = 0
        mean = [Double](repeating: 0, count: pixels)
        m2 = [Double](repeating: 0, count: pixels)
        self.readout = readout.flatMap { $0.rawPixels == pixels ? $0 : nil }
        spectra = self.readout.map(ReadoutSpectra.init)
        readoutPower = [Double](repeating: 0, count: spectra.map { $0.channels * $0.bins } ?? 0)
    }

    public static func == (a: DarkStatistics, b: DarkStatistics) -> Bool {
        a.count == b.count && a.mean == b.mean && a.m2 == b.m2 && a.readoutPower == b.readoutPower && a.readout == b.readout
    }

    public var pixels: Int { mean.count }

    public mutating func add(_ frame: [Float]) throws {
        guard frame.count == pixels else {
            throw PreprocessError.shape("a dark frame has \(frame.count) pixels, the detector \(pixels)")
        }
        count += 1
        let n = Double(count)
        mean.withUnsafeMutableBufferPointer { mean in
            m2.withUnsafeMutableBufferPointer { m2 in
                for i in 0..<frame.count {
                    let v = Double(frame[i])
                    let delta = v - mean[i]
                    mean[i] += delta / n
                    m2[i] += delta * (v - mean[i])
                }
            }
        }
        if let spectra { try spectra.accumulate(frame, into: &readoutPower) }
    }

    /// The statistics of all ranks' darks together (collective): with
    /// M = sum n_i mean_i / n, M2 = sum (M2_i + n_i (mean_i - M)^2).
    public func merged(over comm: Collective) throws -> DarkStatistics {
        guard comm.size > 1 else { return self }
        var weighted = [Double(count)] + mean.map { $0 * Double(count) }
        try weighted.withUnsafeMutableBufferPointer { try comm.sum($0) }
        let total = weighted[0]
        var out = DarkStatistics(pixels: pixels, readout: readout)
        out.count = Int(total.rounded())
        // Every rank must hold spectra of one size (or none), or the sum below would not match.
        let size = Double(readoutPower.count)
        guard try comm.maximum(size) == size, try -comm.maximum(-size) == size else {
            throw PreprocessError.input("dark statistics merged over ranks with and without the readout layout")
        }
        if !readoutPower.isEmpty {
            var power = readoutPower
            try power.withUnsafeMutableBufferPointer { try comm.sum($0) }
            out.readoutPower = power
        }
        guard total > 0 else { return out }
        out.mean = weighted.dropFirst().map { $0 / total }
        var spread = (0..<pixels).map { i -> Double in
            let d = mean[i] - out.mean[i]
            return m2[i] + Double(count) * d * d
        }
        try spread.withUnsafeMutableBufferPointer { try comm.sum($0) }
        out.m2 = spread
        return out
    }

    /// Each channel's interference lines (radians per readout sample),
    /// strongest first: peaks of the summed readout power above `threshold`^2
    /// times the band's median (the upper 1 - `band` of the spectrum), away
    /// from the row-rate harmonics, neither within 3 bins of a stronger line
    /// nor under its side lobes; each placed between its bins by the ratio of
    /// its main lobe's two bins. Empty without a layout or darks.
    public func interferenceLines(threshold: Double, band: Double, maxPerChannel: Int) -> [[Double]] {
        guard let spectra, let layout = readout, count > 0 else { return [] }
        let n = spectra.length, bins = spectra.bins
        let lowest = max(1, Int(band * Double(n / 2)))
        guard lowest + 2 < n / 2 else { return [[Double]](repeating: [], count: layout.channels) }
        let rowPeriod = Double(n) / Double(layout.blockWidth)
        return (0..<layout.channels).map { ch in
            let p = Array(readoutPower[(ch * bins)..<((ch + 1) * bins)])
            var sample = Swift.stride(from: lowest, to: n / 2, by: max(1, (n / 2 - lowest) / 2048)).map { Float(p[$0]) }
            let middle = sample.count / 2
            let level = threshold * threshold * Double(sample.withUnsafeMutableBufferPointer { select(middle, in: $0) })
            var peaks: [Int] = []
            for k in (lowest + 1)..<(n / 2 - 1) where p[k] > level && p[k] >= p[k - 1] && p[k] >= p[k + 1]
                && abs(Double(k) - (Double(k) / rowPeriod).rounded() * rowPeriod) > 2 {
                peaks.append(k)
            }
            var kept: [Int] = []
            for k in peaks.sorted(by: { p[$0] > p[$1] }) where kept.count < maxPerChannel {
                let shadowed = kept.contains { line in
                    let distance = Double(abs(line - k))
                    return distance <= 3 || p[k] < 2 * p[line] / (Double.pi * Double.pi * distance * distance)
                }
                if !shadowed { kept.append(k) }
            }
            return kept.map { k in
                // |X| falls as a sinc: the main lobe's bins stand as (1 - d) : d.
                let a = p[k].squareRoot(), right = p[k + 1].squareRoot(), left = p[k - 1].squareRoot()
                let d = right >= left ? right / (a + right) : -left / (a + left)
                return 2 * Double.pi * (Double(k) + d) / Double(n)
            }
        }
    }

    /// Sample standard deviation (0 with fewer than two frames).
    public var standardDeviation: [Double] {
        count > 1 ? m2.map { ($0 / Double(count - 1)).squareRoot() } : [Double](repeating: 0, count: pixels)
    }

    /// CXI mask of the image pixels (rows x image columns) from the darks:
    /// dead where the deviation is exactly zero, hot where the dark level or
    /// the deviation stands out from its channel by `threshold` channel
    /// noise deviations, and whole channels noisy where their typical
    /// deviation is `channelFactor` times the detector's (readout
    /// interference, which changes phase from frame to frame, raises every
    /// channel's deviation alike, so a channel stands out by a smaller factor
    /// than a pixel).
    public func mask(layout: ReadoutLayout, threshold: Double, channelFactor: Double = 2) -> [UInt32] {
        let std = standardDeviation
        var out = [UInt32](repeating: 0, count: layout.rows * layout.columns)
        guard count > 1 else { return out }
        let cw = layout.columnsPerChannel
        func median(_ v: [Double]) -> Double {
            guard !v.isEmpty else { return 0 }
            let s = v.sorted()
            return s[s.count / 2]
        }
        var channelNoise: [Double] = []
        for ch in 0..<layout.channels {
            var live: [Double] = []
            for y in 0..<layout.rows {
                for x in (ch * cw)..<((ch + 1) * cw) {
                    let d = std[y * layout.rawColumns + layout.rawColumn(ofImageColumn: x)]
                    if d > 0 { live.append(d) }
                }
            }
            channelNoise.append(median(live))
        }
        let detectorNoise = median(channelNoise)
        for ch in 0..<layout.channels {
            let noisy = channelNoise[ch] > channelFactor * detectorNoise
            let noise = max(channelNoise[ch], 1e-9)
            for y in 0..<layout.rows {
                let raws = ((ch * cw)..<((ch + 1) * cw)).map { y * layout.rawColumns + layout.rawColumn(ofImageColumn: $0) }
                // Pixels read at nearly the same time share the offset drift.
                let level = median(raws.map { mean[$0] })
                for (k, raw) in raws.enumerated() {
                    var bits: UInt32 = noisy ? PixelMask.noisy : 0
                    if std[raw] == 0 {
                        bits |= PixelMask.dead
                    } else if !noisy && (std[raw] > threshold * noise || mean[raw] - level > threshold * noise) {
                        bits |= PixelMask.hot
                    }
                    out[y * layout.columns + ch * cw + k] = bits
                }
            }
        }
        return out
    }
}

/// The readout transform of a dark frame, plan and buffers made once. Its
/// scratch is shared by copies of the statistics holding it: dark frames
/// are added from one thread at a time, as every caller does.
final class ReadoutSpectra: @unchecked Sendable {
    let layout: ReadoutLayout
    let length: Int
    var channels: Int { layout.channels }
    var bins: Int { length / 2 + 1 }
    private let input: ComplexBuffer
    private let output: ComplexBuffer
    private let plan: FFTLines?

    init(_ layout: ReadoutLayout) {
        self.layout = layout
        length = FFTW.fastLength(atLeast: layout.sequenceLength)
        input = ComplexBuffer(count: (layout.channels * length + 1) / 2)
        output = ComplexBuffer(count: layout.channels * (length / 2 + 1))
        plan = try? FFTLines(length: length, count: layout.channels, kind: .realToComplex,
                             input: .init(stride: 1, distance: length), output: .init(stride: 1, distance: length / 2 + 1))
    }

    /// Adds each channel's |X_k|^2 to `power`: the readout sequence less its
    /// mean, with outliers (dead and hot pixels, 8 deviations out) zeroed.
    func accumulate(_ frame: [Float], into power: inout [Double]) throws {
        guard let plan else { throw PreprocessError.input("no FFT plan for the readout spectrum of \(layout.sequenceLength) samples") }
        let L = layout, bw = L.blockWidth, n = length
        let x = UnsafeMutableRawPointer(input.baseAddress).assumingMemoryBound(to: Float.self)
        for ch in 0..<L.channels {
            let s = x + ch * n
            var sum = 0.0, squares = 0.0
            for y in 0..<L.rows {
                for k in 0..<bw {
                    let v = frame[y * L.rawColumns + ch * bw + k]
                    let value = v.isFinite ? v : 0
                    s[y * bw + k] = value
                    sum += Double(value)
                    squares += Double(value) * Double(value)
                }
            }
            let count = Double(L.sequenceLength), mean = sum / count
            let limit = Float(8 * max(squares / count - mean * mean, 0).squareRoot()), m = Float(mean)
            for i in 0..<L.sequenceLength {
                let v = s[i] - m
                s[i] = abs(v) > limit ? 0 : v
            }
            (s + L.sequenceLength).update(repeating: 0, count: n - L.sequenceLength)
        }
        try plan.execute(input, output)
        let z = UnsafeMutableRawPointer(output.baseAddress).assumingMemoryBound(to: Float.self)
        power.withUnsafeMutableBufferPointer { p in
            for i in 0..<(L.channels * bins) {
                let re = Double(z[2 * i]), im = Double(z[2 * i + 1])
                p[i] += re * re + im * im
            }
        }
    }
}

public enum PreprocessError: Error, CustomStringConvertible, Sendable, Equatable {
    case shape(String)
    case input(String)

    public var description: String {
        switch self {
        case .shape(let s): s
        case .input(let s): s
        }
    }
}
