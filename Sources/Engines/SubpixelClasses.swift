import Foundation
import Numerics
import Recon
import SwiftFFTW

/// Sub-pixel positions: each frame's offset from its whole-pixel window is
/// rounded to 1/`steps` of a pixel, and frames with the same rounded offset
/// form a class that shares one Fourier-shifted copy of the probe. The
/// copies are remade after each probe update (one transform per class), so
/// the model matches the measured frames without any per-frame cost. With
/// probe modes, each class holds a copy of every mode.
final class SubpixelClasses {
    let pixels: Int
    let frameSize: Int
    let modes: Int
    /// Each frame's class.
    let frameClass: [Int]
    /// Each class's shift, in pixels.
    let shifts: [(y: Double, x: Double)]
    /// Each class's spectrum factors, rows then columns.
    private let ramps: ComplexBuffer
    /// The probe's modes shifted for each class: class c's mode k at (c modes + k) pixels.
    let probes: ComplexBuffer
    /// Scratch for remaking the copies.
    private let spectrum: ComplexBuffer
    private let scratch: ComplexBuffer

    init(offsets: [(y: Double, x: Double)], steps: Int, frameSize m: Int, modes: Int = 1) {
        frameSize = m
        pixels = m * m
        self.modes = modes
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
        probes = ComplexBuffer(count: shifts.count * modes * pixels)
        let shifted = shifts.contains { $0 != (0, 0) }
        spectrum = ComplexBuffer(count: shifted ? pixels : 0)
        scratch = ComplexBuffer(count: shifted && m % 2 != 0 ? pixels : 0)
    }

    var count: Int { shifts.count }
    var anyShifted: Bool { spectrum.count > 0 }
    func isShifted(_ c: Int) -> Bool { shifts[c] != (0, 0) }

    /// Mode k of the probe as frame j's model sees it.
    @inline(__always)
    func probe(of j: Int, mode k: Int = 0) -> UnsafeMutablePointer<Complex<Float>> {
        probes.baseAddress + (frameClass[j] * modes + k) * pixels
    }

    /// Class c's copy of mode k.
    @inline(__always)
    func probe(ofClass c: Int, mode k: Int = 0) -> UnsafeMutablePointer<Complex<Float>> {
        probes.baseAddress + (c * modes + k) * pixels
    }

    /// Remakes every class's copy of the `modes` probe-sized arrays at
    /// `probe` (into `copies`, laid out as `probes`, the probe's own copies
    /// unless told), with `transform` doing the single-frame transforms
    /// (forward, inverse).
    func remake(from probe: UnsafeMutablePointer<Complex<Float>>, modes: Int, into copies: ComplexBuffer? = nil,
                plans: (FFTPlan2D, FFTPlan2D), transform: (FFTPlan2D, UnsafeMutablePointer<Complex<Float>>) throws -> Void) throws {
        for k in 0..<modes {
            try remake(mode: probe + k * pixels, index: k, of: modes, into: copies ?? self.probes, plans: plans, transform: transform)
        }
    }

    private func remake(mode probe: UnsafeMutablePointer<Complex<Float>>, index k: Int, of modes: Int, into probes: ComplexBuffer,
                        plans: (FFTPlan2D, FFTPlan2D), transform: (FFTPlan2D, UnsafeMutablePointer<Complex<Float>>) throws -> Void) throws {
        let m = pixels
        let (fwd, inv) = plans
        if anyShifted {
            spectrum.baseAddress.update(from: probe, count: m)
            try transform(fwd, spectrum.baseAddress)
        }
        let s = 1 / Float(m)
        for c in shifts.indices {
            let out = probes.baseAddress + (c * modes + k) * m
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
