import Foundation
import Numerics
import Recon
import SwiftFFTW

/// Photons: dark, offsets and lines subtracted, gain, masks and beamstop,
/// then the crop around the centre and the Fourier downsampling.
extension FrameCleaner {
    /// Image pixels in photons (the dark, offsets and interference lines
    /// subtracted; gain; masked pixels and sub-threshold values to 0; the
    /// beamstop divided out), the image's total and centre of mass summed
    /// while a row is in cache, and the row's part in the crop window placed
    /// in `realCrop` (made there in place when the crop holds whole rows).
    /// `finite` is false when a raw image pixel was not (taken as 0).
    func extractPhotons(_ raw: UnsafeBufferPointer<Float>, subtracting found: [[InterferenceLine]],
                                offsets: [[Float]]) -> (Double, (y: Double, x: Double), finite: Bool) {
        let L = layout
        let inverseGain = Float(1 / gain), threshold = Float(options.photonThreshold)
        let cw = L.columnsPerChannel, columns = L.columns, bw = L.blockWidth
        let r = raw.baseAddress!, d = dark.baseAddress!, factor = photonFactor.baseAddress!
        let lines = RowLines(found.isEmpty ? [[InterferenceLine]](repeating: [], count: L.channels) : found,
                             columns: cw, blockWidth: bw)
        let level = UnsafeMutablePointer<Float>.allocate(capacity: cw), row = UnsafeMutablePointer<Float>.allocate(capacity: columns)
        defer { level.deallocate(); row.deallocate() }
        // The crop window's rows and columns on the detector.
        let c = cropSize, (y0, x0) = cropOrigin
        let ys = max(0, -y0)..<min(c, L.rows - y0), xs = max(0, -x0)..<min(c, L.columns - x0)
        let crop = UnsafeMutableRawPointer(realCrop.baseAddress).assumingMemoryBound(to: Float.self)
        let wholeRows = x0 <= 0 && columns - x0 <= c
        let largest = SIMD8<Float>(repeating: .greatestFiniteMagnitude)
        var badLanes = SIMDMask<SIMD8<Int32>>(repeating: false)
        var bad = false
        var total = 0.0, sy = 0.0, sx = 0.0
        for y in 0..<L.rows {
            let cy = y - y0
            let inCrop = ys.contains(cy) && !xs.isEmpty
            let out = wholeRows && inCrop ? crop + cy * c - x0 : row
            for ch in 0..<L.channels {
                let first = y * L.rawColumns + ch * bw
                let x = r + first, dk = d + first, o = out + ch * cw, f = factor + y * columns + ch * cw
                offsetRow(offsets[ch], row: y, count: cw, into: level)
                lines.add(channel: ch, into: level)
                // Explicit lanes: the selects do not vectorize by themselves.
                var k = 0
                while k + 8 <= cw {
                    let v = load(x + k)
                    // False for NaN too.
                    let finite = (v .<= largest) .& (v .>= -largest)
                    badLanes = badLanes .| .!finite
                    let photons = (v.replacing(with: 0, where: .!finite) - load(dk + k) - load(level + k)) * inverseGain
                    UnsafeMutableRawPointer(o + k).storeBytes(
                        of: (photons * load(f + k)).replacing(with: 0, where: photons .< threshold), as: SIMD8<Float>.self)
                    k += 8
                }
                while k < cw {
                    let v = x[k]
                    bad = bad || !v.isFinite
                    let photons = ((v.isFinite ? v : 0) - dk[k] - level[k]) * inverseGain
                    o[k] = photons < threshold ? 0 : photons * f[k]
                    k += 1
                }
            }
            // Float lanes over a row (exact enough for a centre), Double across rows.
            var sum = SIMD8<Float>.zero, moment = SIMD8<Float>.zero
            var position = SIMD8<Float>(0, 1, 2, 3, 4, 5, 6, 7)
            var k = 0
            while k + 8 <= columns {
                let v = load(out + k)
                sum += v
                moment += v * position
                position += 8
                k += 8
            }
            var rowSum = Double(sum.sum()), rowMoment = Double(moment.sum())
            while k < columns {
                rowSum += Double(out[k])
                rowMoment += Double(out[k]) * Double(k)
                k += 1
            }
            total += rowSum
            sy += rowSum * Double(y)
            sx += rowMoment
            if inCrop && !wholeRows {
                (crop + cy * c + xs.lowerBound).update(from: row + x0 + xs.lowerBound, count: xs.count)
            }
        }
        let finite = !bad && !any(badLanes)
        guard total > 0 else { return (0, centre, finite) }
        return (total, (y: sy / total, x: sx / total), finite)
    }

    @inline(__always)
    func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    /// The crop (placed by the photon pass; zero outside the detector, as
    /// made), then the kept low frequencies of its
    /// spectrum transformed back on the output grid, scaled so photons are
    /// conserved (each output pixel sums its footprint); ringing below zero is clipped.
    func resample() throws -> [Float] {
        let c = cropSize, m = outputSize
        let r = UnsafeMutableRawPointer(realCrop.baseAddress).assumingMemoryBound(to: Float.self)
        guard let rowPlan, let columnPlan, let outputPlan else { return Array(UnsafeBufferPointer(start: r, count: c * c)) }
        try rowPlan.execute(realCrop, rowSpectra)
        // The kept horizontal frequencies, in the output's FFT order; the
        // negative ones are the conjugates of the positive (a real input).
        let w = c / 2 + 1, half = m / 2
        let spectra = UnsafeMutableRawPointer(rowSpectra.baseAddress).assumingMemoryBound(to: Float.self)
        let kept = UnsafeMutableRawPointer(keptColumns.baseAddress).assumingMemoryBound(to: Float.self)
        for y in 0..<c {
            let source = spectra + 2 * y * w, target = kept + 2 * y * m
            for dx in 0..<(m - half) {
                target[2 * dx] = source[2 * dx]
                target[2 * dx + 1] = source[2 * dx + 1]
            }
            for dx in (m - half)..<m {
                let k = m - dx
                target[2 * dx] = source[2 * k]
                target[2 * dx + 1] = -source[2 * k + 1]
            }
        }
        try columnPlan.execute(keptColumns, keptColumns)
        // The kept vertical frequencies: rows -half..<m-half of the column spectra.
        let o = UnsafeMutableRawPointer(outputBuffer.baseAddress).assumingMemoryBound(to: Float.self)
        for dy in 0..<m {
            let ky = dy < m - half ? dy : dy - m
            let source = kept + 2 * ((ky + c) % c) * m, target = o + 2 * dy * m
            if let taper {
                taper.withUnsafeBufferPointer { all in
                    let t = all.baseAddress! + dy * m
                    for i in 0..<m {
                        target[2 * i] = source[2 * i] * t[i]
                        target[2 * i + 1] = source[2 * i + 1] * t[i]
                    }
                }
            } else {
                target.update(from: source, count: 2 * m)
            }
        }
        try outputPlan.execute(outputBuffer.baseAddress, outputBuffer.baseAddress, normalization: .none)
        let scale = 1 / Float(m * m)
        return outputMask.withUnsafeBufferPointer { mask in
            [Float](unsafeUninitializedCapacity: m * m) { out, n in
                for i in 0..<(m * m) { out[i] = mask[i] != 0 ? 0 : max(0, o[2 * i] * scale) }
                n = m * m
            }
        }
    }
}
