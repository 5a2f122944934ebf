import Foundation
import Numerics
import Recon
import SwiftFFTW

/// Sub-pixel positions: each frame's offset from its whole-pixel window is
/// rounded to 1/`steps` of a pixel, and frames with the same rounded offset
/// form a class that shares one Fourier-shifted copy of the probe. The
/// copies are remade after each probe update (one transform per class), so
/// the model matches the measured frames without any per-frame cost.
final class SubpixelClasses {
    let pixels: Int
    let frameSize: Int
    /// Each frame's class.
    let frameClass: [Int]
    /// Each class's shift, in pixels.
    let shifts: [(y: Double, x: Double)]
    /// Each class's spectrum factors, rows then columns.
    private let ramps: ComplexBuffer
    /// The probe shifted for each class.
    let probes: ComplexBuffer
    /// Scratch for remaking the copies.
    private let spectrum: ComplexBuffer
    private let scratch: ComplexBuffer

    init(offsets: [(y: Double, x: Double)], steps: Int, frameSize m: Int) {
        frameSize = m
        pixels = m * m
        let steps = Double(steps)
        var classIndex: [Int: Int] = [:], shifts: [(y: Double, x: Double)] = [], classes: [Int] = []
        for o in offsets {
            let ky = steps > 0 ? Int((o.y * steps).rounded()) : 0, kx = steps > 0 ? Int((o.x * steps).rounded()) : 0
            let key = (ky + 1024) * 4096 + (kx + 1024)
            if let c = classIndex[key] {
                classes.append(c)
            } else {
                classIndex[key] = shifts.count
                classes.append(shifts.count)
                shifts.append(steps > 0 ? (Double(ky) / steps, Double(kx) / steps) : (0, 0))
            }
        }
        if shifts.isEmpty { shifts = [(0, 0)] }
        frameClass = classes
        self.shifts = shifts
        ramps = ComplexBuffer(count: shifts.count * 2 * m)
        for (c, d) in shifts.enumerated() {
            (ramps.baseAddress + 2 * c * m).initialize(from: shiftRamp(m, d.y), count: m)
            (ramps.baseAddress + (2 * c + 1) * m).initialize(from: shiftRamp(m, d.x), count: m)
        }
        probes = ComplexBuffer(count: shifts.count * pixels)
        let shifted = shifts.contains { $0 != (0, 0) }
        spectrum = ComplexBuffer(count: shifted ? pixels : 0)
        scratch = ComplexBuffer(count: shifted && m % 2 != 0 ? pixels : 0)
    }

    var count: Int { shifts.count }
    var anyShifted: Bool { spectrum.count > 0 }
    func isShifted(_ c: Int) -> Bool { shifts[c] != (0, 0) }

    /// The probe as frame j's model sees it.
    @inline(__always)
    func probe(of j: Int) -> UnsafeMutablePointer<Complex<Float>> {
        probes.baseAddress + frameClass[j] * pixels
    }

    /// Remakes every class's copy of `probe` (into `copies`, the probe's
    /// own copies unless told), with `transform` doing the single-frame
    /// transforms (forward, inverse).
    func remake(from probe: UnsafeMutablePointer<Complex<Float>>, into copies: ComplexBuffer? = nil, plans: (FFTPlan2D, FFTPlan2D),
                transform: (FFTPlan2D, UnsafeMutablePointer<Complex<Float>>) throws -> Void) throws {
        let m = pixels
        let probes = copies ?? self.probes
        let (fwd, inv) = plans
        if anyShifted {
            spectrum.baseAddress.update(from: probe, count: m)
            try transform(fwd, spectrum.baseAddress)
        }
        let s = 1 / Float(m)
        for c in shifts.indices {
            let out = probes.baseAddress + c * m
            if !isShifted(c) {
                out.update(from: probe, count: m)
                continue
            }
            // Transformed where it is kept when the plan's alignment allows (an
            // even frame); the inverse's 1/m goes with the ramps.
            let target = frameSize % 2 == 0 ? out : scratch.baseAddress
            shift(spectrum.baseAddress, into: target, ramps: c, inverse: false, adding: false, scale: s)
            try transform(inv, target)
            if target != out { out.update(from: target, count: m) }
        }
    }

    /// out = scale x spectrum x ramps of class c, or out += ... when `adding`;
    /// the ramps conjugated for the inverse shift.
    func shift(_ spectrum: UnsafeMutablePointer<Complex<Float>>, into out: UnsafeMutablePointer<Complex<Float>>,
               ramps c: Int, inverse: Bool, adding: Bool, scale: Float = 1) {
        let n = frameSize
        let f = floats(spectrum), o = floats(out)
        let ry = floats(ramps.baseAddress + 2 * c * n), rx = floats(ramps.baseAddress + (2 * c + 1) * n)
        let sign: Float = inverse ? -1 : 1
        for y in 0..<n {
            ComplexRows.ramped(f + 2 * y * n, a: (scale * ry[2 * y], scale * sign * ry[2 * y + 1]), rx, sign: sign, into: o + 2 * y * n,
                               adding: adding, count: n)
        }
    }
}
