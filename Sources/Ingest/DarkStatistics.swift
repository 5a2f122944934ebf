import Foundation
import Recon

/// Per-pixel mean and variance of dark frames: Welford's update frame by
/// frame on each rank, merged over the ranks with Chan's formula, so the
/// result does not depend on how the darks were split.
public struct DarkStatistics: Sendable, Equatable {
    public private(set) var count: Int
    public private(set) var mean: [Double]
    /// Sum of squared deviations from the mean.
    public private(set) var m2: [Double]

    public init(pixels: Int) {
        count = 0
        mean = [Double](repeating: 0, count: pixels)
        m2 = [Double](repeating: 0, count: pixels)
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
    }

    /// The statistics of all ranks' darks together (collective): with
    /// M = sum n_i mean_i / n, M2 = sum (M2_i + n_i (mean_i - M)^2).
    public func merged(over comm: Collective) throws -> DarkStatistics {
        guard comm.size > 1 else { return self }
        var weighted = [Double(count)] + mean.map { $0 * Double(count) }
        try weighted.withUnsafeMutableBufferPointer { try comm.sum($0) }
        let total = weighted[0]
        var out = DarkStatistics(pixels: pixels)
        out.count = Int(total.rounded())
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
