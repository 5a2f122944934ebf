import Foundation
import Numerics
import Parameters
import Recon
import SwiftFFTW

/// Maximum-likelihood refinement (Thibault & Guizar-Sicairos, New J. Phys.
/// 14, 063004, 2012): nonlinear conjugate gradients on object and probe
/// for the Poisson negative log-likelihood
///
///     L = sum_j sum_k w_k (I_jk - D_jk log I_jk),   I_j = |F(S_j(P) O_j)|^2 / N,
///
/// D the measured counts, w the mask, plus an optional smoothness term
/// mu sum |O(x) - O(x')|^2 over neighbouring object pixels. DM fits noise
/// when run long; this fits the noise model instead, so it is the refinement
/// after DM (and converges alone from a first guess, more slowly).
///
/// Per iteration: the gradient (one forward and one inverse transform per
/// frame; object sums completed over the overlaps like DM's, probe sums
/// reduced over ranks), a Polak-Ribiere direction with the probe's part
/// scaled to balance the object's (PtyPy's scale_p_o, a running geometric
/// mean), then the step along it from L's slope and expected curvature
/// in the step length, summed over all ranks (one more forward transform
/// per frame). Each object pixel's inner products are
/// counted once, by the rank owning its tile; shared pixels are bit-identical
/// on every rank holding them, so N ranks follow the 1-rank path up to the
/// order of floating-point sums.
public final class MaximumLikelihoodEngine: ReconstructionEngine {
    public static let kind = EngineKind(
        name: "ml", summary: "maximum likelihood: Poisson noise, conjugate gradients",
        parameters: [ParameterSpec("object_smoothness", .number(0...1e3), default: .number(0),
                                   doc: "ML's object smoothness regularisation, in PtyPy's reg_del2_amplitude units (0: none)")],
        type: MaximumLikelihoodEngine.self, frameValues: 2)

    public let model: PtychoModel
    public private(set) var options: EngineOptions
    public var name: String { Self.kind.name }

    private let pixels: Int
    /// Each frame's model spectrum F(S(P) O), and the inverse transform of its weighted gradient.
    private let spectra: ComplexBuffer
    private let chi: ComplexBuffer
    private let work: ComplexBuffer
    private let plans: BatchPlans
    /// Object gradient (region), the previous one and the search direction.
    private let objectGradient: ComplexBuffer
    private let objectGradientBefore: ComplexBuffer
    private let objectDirection: ComplexBuffer
    /// The same for the probe, the direction's shifted copies, and scratch for the shifted classes' sums.
    private let probeGradient: ComplexBuffer
    private let probeGradientBefore: ComplexBuffer
    private let probeDirection: ComplexBuffer
    private let shiftedDirection: ComplexBuffer
    private let classSums: ComplexBuffer
    private let backShifted: ComplexBuffer
    /// The probe's weight in the direction (nil until the probe is first updated).
    private var probeScale: Double? = nil
    /// False after a restart: the next direction is the (preconditioned) steepest descent.
    private var haveDirection = false
    private let reductions = UnsafeMutableBufferPointer<Double>.allocate(capacity: 8)
    /// The model intensity's floor, in counts: keeps D / I finite where the model is dark.
    private let floor: Float = 1e-3

    public init(model: PtychoModel, options: EngineOptions) throws {
        var problems = options.problems()
        if options.algorithm != Self.kind.name { problems.append("algorithm: the ML engine is 'ml', not '\(options.algorithm)'") }
        guard problems.isEmpty else { throw SimulationError.invalid(problems.joined(separator: "; ")) }
        self.model = model
        self.options = options
        let m = model.frameSize
        pixels = model.pixels
        let frames = model.frameCount
        spectra = ComplexBuffer(count: frames * pixels)
        chi = ComplexBuffer(count: frames * pixels)
        let batch = max(1, min(options.batch, frames))
        work = ComplexBuffer(count: batch * pixels)
        plans = try BatchPlans(frameSize: m, batch: batch, rigor: options.fftPlanning.rigor)
        let area = model.region.area
        objectGradient = ComplexBuffer(count: area)
        objectGradientBefore = ComplexBuffer(count: area)
        objectDirection = ComplexBuffer(count: area)
        probeGradient = ComplexBuffer(count: pixels)
        probeGradientBefore = ComplexBuffer(count: pixels)
        probeDirection = ComplexBuffer(count: pixels)
        shiftedDirection = ComplexBuffer(count: model.classes.count * pixels)
        classSums = ComplexBuffer(count: pixels)
        backShifted = ComplexBuffer(count: model.classes.anyShifted ? pixels : 0)
    }

    deinit { reductions.deallocate() }

    public func adjust(_ options: EngineOptions) throws {
        var problems = options.problems()
        if options.algorithm != Self.kind.name { problems.append("algorithm: the ML engine is 'ml', not '\(options.algorithm)'") }
        guard problems.isEmpty else { throw SimulationError.invalid(problems.joined(separator: "; ")) }
        self.options = options
    }

    public func place(_ j: Int, amplitudes values: UnsafeBufferPointer<Float>) {
        model.place(j, amplitudes: values)
        // A new frame changes the function: conjugacy with the old direction is lost.
        haveDirection = false
    }

    /// The last gradients and the search direction (the next direction is
    /// built from them) and the probe's scale; nothing per frame.
    public var state: [EngineStatePart] {
        [EngineStatePart(name: "ml_object_gradient", shape: .region, values: UnsafeBufferPointer(objectGradientBefore.buffer)),
         EngineStatePart(name: "ml_object_direction", shape: .region, values: UnsafeBufferPointer(objectDirection.buffer)),
         EngineStatePart(name: "ml_probe_gradient", shape: .probe, values: UnsafeBufferPointer(probeGradientBefore.buffer)),
         EngineStatePart(name: "ml_probe_direction", shape: .probe, values: UnsafeBufferPointer(probeDirection.buffer))]
    }

    public var stateNumbers: [String: Double] {
        ["ml_probe_scale": probeScale ?? -1, "ml_has_direction": haveDirection ? 1 : 0]
    }

    /// Without saved state the search starts from the steepest descent.
    public func restore(state saved: EngineState?) throws {
        guard let saved else {
            haveDirection = false
            probeScale = nil
            return
        }
        let area = model.region.area
        for (name, buffer, count) in [("ml_object_gradient", objectGradientBefore, area), ("ml_object_direction", objectDirection, area),
                                      ("ml_probe_gradient", probeGradientBefore, pixels), ("ml_probe_direction", probeDirection, pixels)] {
            buffer.baseAddress.update(from: try saved.part(name, count: count), count: count)
        }
        let scale = try saved.number("ml_probe_scale")
        probeScale = scale >= 0 ? scale : nil
        haveDirection = try saved.number("ml_has_direction") != 0
    }

    private var updatesProbe: Bool { model.iteration >= options.probeUpdateStart }

    // MARK: Iteration

    @discardableResult
    public func iterate() throws -> IterationStats {
        let start = Date()
        let (error, photons) = try gradient()
        let conjugate = try direction()
        var alpha = try stepLength()
        if alpha == nil && conjugate {
            // Not a descent direction after all: the steepest descent is.
            steepestDescent()
            alpha = try stepLength()
        }
        if let alpha {
            step(alpha)
            if updatesProbe { try model.probeChanged() }
        } else {
            haveDirection = false
        }
        return model.record(fourierError: photons > 0 ? error / photons : 0, since: start)
    }

    /// The active frames in batches that fill the transform buffer `work`,
    /// in the solver's visiting order.
    private func forEachBatch(_ body: (ArraySlice<Int>) throws -> Void) rethrows {
        let active = model.active, batch = work.count / pixels
        var first = 0
        while first < active.count {
            let count = min(batch, active.count - first)
            try body(active[first..<(first + count)])
            first += count
        }
    }

    /// The gradient of L at the current object and probe, into
    /// `objectGradient` (complete over the region) and `probeGradient`
    /// (summed over ranks); returns the Fourier error and measured photons
    /// over all ranks.
    private func gradient() throws -> (error: Double, photons: Double) {
        let sums = model.sums
        sums.clear()
        let m = pixels
        var error = 0.0, photons = 0.0
        try forEachBatch { frames in
            let (fwd, inv) = try plans(frames.count)
            for (b, j) in frames.enumerated() { model.formExit(j, into: work.baseAddress + b * m) }
            try fwd.execute(work.baseAddress, work.baseAddress, normalization: .none)
            for (b, j) in frames.enumerated() {
                (spectra.baseAddress + j * m).update(from: work.baseAddress + b * m, count: m)
                error += weighGradient(work.baseAddress + b * m, model.amplitude(of: j))
                photons += Double(model.totals[j])
            }
            try inv.execute(work.baseAddress, work.baseAddress, normalization: .none)
            for (b, j) in frames.enumerated() {
                (chi.baseAddress + j * m).update(from: work.baseAddress + b * m, count: m)
                accumulateObjectGradient(j)
            }
        }
        let mu = try smoothnessWeight()
        if mu > 0 { addSmoothnessGradient(mu) }
        try sums.combine()
        objectGradient.baseAddress.update(from: sums.totalNumerator.baseAddress, count: model.region.area)
        if updatesProbe {
            try probeGradientSums()
        } else {
            floats(probeGradient.baseAddress).update(repeating: 0, count: 2 * m)
        }
        reductions[0] = error
        reductions[1] = photons
        try model.comm.sum(UnsafeMutableBufferPointer(rebasing: reductions[0..<2]))
        return (reductions[0], reductions[1])
    }

    /// Turns a frame's spectrum into w (1 - D / I) x spectrum in place, the
    /// Fourier side of the gradient; returns the frame's amplitude misfit
    /// sum (|F psi| / sqrt(N) - sqrt(D))^2 over valid pixels, as DM reports it.
    @inline(__always)
    private func weighGradient(_ spectrum: UnsafeMutablePointer<Complex<Float>>, _ amplitude: UnsafePointer<Float>) -> Double {
        let f = floats(spectrum), mask = model.mask
        let n = 1 / Float(pixels), floor = self.floor
        var error: Float = 0
        for k in 0..<pixels {
            let re = f[2 * k], im = f[2 * k + 1]
            let power = (re * re + im * im) * n
            let a = amplitude[k], w = mask[k]
            let d = power.squareRoot() - a
            error = Relaxed.sum(error, w * d * d)
            let g = w * (1 - a * a / (power + floor))
            f[2 * k] = re * g
            f[2 * k + 1] = im * g
        }
        return Double(error)
    }

    /// Adds conj(S(P)) x chi_j / N (and |S(P)|^2, the illumination) over frame j's window.
    private func accumulateObjectGradient(_ j: Int) {
        let n = model.frameSize, w = model.region.width
        let p = floats(model.probe(of: j)), g = floats(chi.baseAddress + j * pixels)
        let num = floats(model.sums.numerator.baseAddress) + model.windowStart(j)
        let den = model.sums.denominator + model.windowStart(j) / 2
        let s = 1 / Float(pixels)
        for y in 0..<n {
            let row = num + 2 * y * w, dr = den + y * w, k = 2 * y * n
            for x in 0..<n {
                let pr = p[k + 2 * x], pi = p[k + 2 * x + 1], gr = g[k + 2 * x] * s, gi = g[k + 2 * x + 1] * s
                row[2 * x] += pr * gr + pi * gi
                row[2 * x + 1] += pr * gi - pi * gr
                dr[x] += pr * pr + pi * pi
            }
        }
    }

    /// The probe gradient: per sub-pixel class, conj(O_j) x chi_j / N summed
    /// over its frames, shifted back for shifted classes (as in the
    /// projection engine's probe step), then summed over ranks; zero
    /// outside the probe's support.
    private func probeGradientSums() throws {
        let classes = model.classes, m = pixels
        let grad = floats(probeGradient.baseAddress)
        grad.update(repeating: 0, count: 2 * m)
        if classes.anyShifted { floats(backShifted.baseAddress).update(repeating: 0, count: 2 * m) }
        for c in 0..<classes.count where !model.classMembers[c].isEmpty {
            if !classes.isShifted(c) {
                accumulateProbeGradient(model.classMembers[c], into: grad)
            } else {
                floats(classSums.baseAddress).update(repeating: 0, count: 2 * m)
                accumulateProbeGradient(model.classMembers[c], into: floats(classSums.baseAddress))
                try model.transform(model.single.forward, classSums.baseAddress)
                classes.shift(classSums.baseAddress, into: backShifted.baseAddress, ramps: c, inverse: true, adding: true)
            }
        }
        if classes.anyShifted {
            try model.transform(model.single.inverse, backShifted.baseAddress)
            let s = 1 / Float(m), b = floats(backShifted.baseAddress)
            for i in 0..<(2 * m) { grad[i] += b[i] * s }
        }
        try model.comm.sum(probeGradient.buffer)
        model.applySupport(to: probeGradient.baseAddress)
    }

    private func accumulateProbeGradient(_ frames: [Int], into sum: UnsafeMutablePointer<Float>) {
        let n = model.frameSize, w = model.region.width
        let s = 1 / Float(pixels)
        for j in frames {
            let o = floats(model.object.baseAddress) + model.windowStart(j), g = floats(chi.baseAddress + j * pixels)
            for y in 0..<n {
                let orow = o + 2 * y * w, k = 2 * y * n
                for x in 0..<n {
                    let or = orow[2 * x], oi = orow[2 * x + 1], gr = g[k + 2 * x] * s, gi = g[k + 2 * x + 1] * s
                    sum[k + 2 * x] += or * gr + oi * gi
                    sum[k + 2 * x + 1] += or * gi - oi * gr
                }
            }
        }
    }

    // MARK: Smoothness

    /// mu of the smoothness term: PtyPy's scaling of reg_del2_amplitude by
    /// the measured pixels and photons over the object's size, so one
    /// setting means the same for any scan; 0 when off.
    private func smoothnessWeight() throws -> Double {
        guard options.objectSmoothness > 0 else { return 0 }
        var valid = 0.0
        for i in 0..<pixels where model.mask[i] > 0 { valid += 1 }
        var photons = 0.0
        for j in model.active { photons += Double(model.totals[j]) }
        reductions[0] = valid * Double(model.activeFrames)
        reductions[1] = photons
        try model.comm.sum(UnsafeMutableBufferPointer(rebasing: reductions[0..<2]))
        let objectPixels = Double(model.layout.objectHeight * model.layout.objectWidth)
        return options.objectSmoothness * reductions[0] * reductions[1] / (8 * objectPixels * objectPixels)
    }

    /// Neighbouring pixel pairs (x, x + e) with x in this rank's tile and
    /// x + e in the region, each pair counted by exactly one rank.
    private func forEachOwnedPair(_ body: (_ a: Int, _ b: Int) -> Void) {
        let tile = model.layout.tiles[model.comm.rank], region = model.region, w = region.width
        for y in tile.y0..<tile.y1 {
            for x in tile.x0..<tile.x1 {
                let i = (y - region.y0) * w + (x - region.x0)
                if x + 1 < region.x1 { body(i, i + 1) }
                if y + 1 < region.y1 { body(i, i + w) }
            }
        }
    }

    /// Adds mu (O_a - O_b) at a and its negative at b to this rank's
    /// object sums, before they are combined over the overlaps.
    private func addSmoothnessGradient(_ mu: Double) {
        let o = floats(model.object.baseAddress), num = floats(model.sums.numerator.baseAddress)
        let mu = Float(mu)
        forEachOwnedPair { a, b in
            let dr = mu * (o[2 * a] - o[2 * b]), di = mu * (o[2 * a + 1] - o[2 * b + 1])
            num[2 * a] += dr
            num[2 * a + 1] += di
            num[2 * b] -= dr
            num[2 * b + 1] -= di
        }
    }

    // MARK: Direction and step

    /// Re <a, b> over this rank's tile of a region-shaped pair.
    private func tileDot(_ a: ComplexBuffer, _ b: ComplexBuffer) -> Double {
        let tile = model.layout.tiles[model.comm.rank], region = model.region
        let x = floats(a.baseAddress), z = floats(b.baseAddress)
        var sum = 0.0
        for y in tile.y0..<tile.y1 {
            let row = 2 * ((y - region.y0) * region.width + (tile.x0 - region.x0))
            var partial: Float = 0
            for k in row..<(row + 2 * tile.width) { partial = Relaxed.sum(partial, x[k] * z[k]) }
            sum += Double(partial)
        }
        return sum
    }

    private func probeDot(_ a: ComplexBuffer, _ b: ComplexBuffer) -> Double {
        let x = floats(a.baseAddress), z = floats(b.baseAddress)
        var sum = 0.0
        for k in 0..<(2 * pixels) { sum += Double(x[k]) * Double(z[k]) }
        return sum
    }

    /// The Polak-Ribiere direction, preconditioned by the probe's scale;
    /// says whether it used the previous direction.
    private func direction() throws -> Bool {
        reductions[0] = tileDot(objectGradient, objectGradient)
        reductions[1] = tileDot(objectGradient, objectGradientBefore)
        reductions[2] = tileDot(objectGradientBefore, objectGradientBefore)
        try model.comm.sum(UnsafeMutableBufferPointer(rebasing: reductions[0..<3]))
        let (gg, gb, bb) = (reductions[0], reductions[1], reductions[2])
        // The probe's sums are already the same on every rank.
        let pp = probeDot(probeGradient, probeGradient)
        var scale = probeScale ?? 0
        if updatesProbe {
            let now = pp > 1e-30 ? gg / pp : 1
            scale = probeScale.map { pow($0, 0.9) * pow(now, 0.1) } ?? now
            probeScale = scale
        }
        var beta = 0.0
        if haveDirection {
            let numerator = scale * (pp - probeDot(probeGradient, probeGradientBefore)) + (gg - gb)
            let denominator = scale * probeDot(probeGradientBefore, probeGradientBefore) + bb
            beta = denominator > 0 ? max(0, numerator / denominator) : 0
        }
        let area = model.region.area
        let h = floats(objectDirection.baseAddress), g = floats(objectGradient.baseAddress)
        let b = Float(beta)
        for i in 0..<(2 * area) { h[i] = b * h[i] - g[i] }
        let hp = floats(probeDirection.baseAddress), gp = floats(probeGradient.baseAddress)
        let s = Float(scale)
        for i in 0..<(2 * pixels) { hp[i] = b * hp[i] - s * gp[i] }
        objectGradientBefore.baseAddress.update(from: objectGradient.baseAddress, count: area)
        probeGradientBefore.baseAddress.update(from: probeGradient.baseAddress, count: pixels)
        haveDirection = true
        return beta > 0
    }

    /// The direction as minus the (preconditioned) gradient just taken.
    private func steepestDescent() {
        let h = floats(objectDirection.baseAddress), g = floats(objectGradientBefore.baseAddress)
        for i in 0..<(2 * model.region.area) { h[i] = -g[i] }
        let hp = floats(probeDirection.baseAddress), gp = floats(probeGradientBefore.baseAddress)
        let s = Float(probeScale ?? 0)
        for i in 0..<(2 * pixels) { hp[i] = -s * gp[i] }
    }

    /// The step along the direction from L's slope and its expected
    /// curvature (the Fisher information: E[D] = I turns the second
    /// derivative of the data term into sum w (dI/dalpha)^2 / I, always
    /// positive, where the exact one goes negative wherever the model is
    /// much darker than the data, as it is far from the solution), plus the
    /// smoothness term, exact as it is quadratic; nil where the direction
    /// does not descend.
    private func stepLength() throws -> Double? {
        let moveProbe = updatesProbe
        if moveProbe { try model.shiftedCopies(of: probeDirection.baseAddress, into: shiftedDirection) }
        let m = pixels
        var b1 = 0.0, b2 = 0.0
        try forEachBatch { frames in
            for (b, j) in frames.enumerated() { directionExit(j, work.baseAddress + b * m, moveProbe: moveProbe) }
            try plans(frames.count).forward.execute(work.baseAddress, work.baseAddress, normalization: .none)
            for (b, j) in frames.enumerated() {
                let (c1, c2) = lineCoefficients(j, work.baseAddress + b * m)
                b1 += c1
                b2 += c2
            }
        }
        let mu = try smoothnessWeight()
        if mu > 0 {
            let o = floats(model.object.baseAddress), h = floats(objectDirection.baseAddress)
            var r1 = 0.0, r2 = 0.0
            forEachOwnedPair { a, b in
                let dor = Double(o[2 * a] - o[2 * b]), doi = Double(o[2 * a + 1] - o[2 * b + 1])
                let dhr = Double(h[2 * a] - h[2 * b]), dhi = Double(h[2 * a + 1] - h[2 * b + 1])
                r1 += 2 * (dor * dhr + doi * dhi)
                r2 += dhr * dhr + dhi * dhi
            }
            b1 += mu * r1
            b2 += mu * r2
        }
        reductions[0] = b1
        reductions[1] = b2
        try model.comm.sum(UnsafeMutableBufferPointer(rebasing: reductions[0..<2]))
        let (l1, l2) = (reductions[0], reductions[1])
        guard l2 > 0, l1 < 0 else { return nil }
        let alpha = -0.5 * l1 / l2
        return alpha.isFinite ? alpha : nil
    }

    /// Frame j's exit wave's first-order change along the direction,
    /// S(P) h_O (+ S(h_P) O when the probe moves), into `out`.
    private func directionExit(_ j: Int, _ out: UnsafeMutablePointer<Complex<Float>>, moveProbe: Bool) {
        let n = model.frameSize, w = model.region.width
        let start = model.windowStart(j)
        let o = floats(model.object.baseAddress) + start, h = floats(objectDirection.baseAddress) + start
        let p = floats(model.probe(of: j)), hp = floats(shiftedDirection.baseAddress + model.classes.frameClass[j] * pixels)
        let a = floats(out)
        for y in 0..<n {
            let orow = o + 2 * y * w, hrow = h + 2 * y * w, k = 2 * y * n
            for x in 0..<n {
                let pr = p[k + 2 * x], pi = p[k + 2 * x + 1], hr = hrow[2 * x], hi = hrow[2 * x + 1]
                var re = pr * hr - pi * hi, im = pr * hi + pi * hr
                if moveProbe {
                    let qr = hp[k + 2 * x], qi = hp[k + 2 * x + 1], or = orow[2 * x], oi = orow[2 * x + 1]
                    re += qr * or - qi * oi
                    im += qr * oi + qi * or
                }
                a[k + 2 * x] = re
                a[k + 2 * x + 1] = im
            }
        }
    }

    /// dL/dalpha and half the expected d2L/dalpha2 at 0 for frame j, from
    /// its spectrum Psi and the spectrum A of the exit wave's first-order
    /// change: I(alpha) N = |Psi|^2 + alpha 2 Re(conj(Psi) A) + O(alpha^2).
    private func lineCoefficients(_ j: Int, _ a: UnsafeMutablePointer<Complex<Float>>) -> (Double, Double) {
        let f = floats(spectra.baseAddress + j * pixels), fa = floats(a)
        let mask = model.mask, amplitude = model.amplitude(of: j)
        let n = 1 / Float(pixels), floor = self.floor
        var l1: Float = 0, l2: Float = 0
        for k in 0..<pixels {
            let re = f[2 * k], im = f[2 * k + 1], ar = fa[2 * k], ai = fa[2 * k + 1]
            let power = (re * re + im * im) * n + floor
            let d = amplitude[k] * amplitude[k], w = mask[k]
            let c1 = 2 * (re * ar + im * ai) * n
            l1 = Relaxed.sum(l1, w * (1 - d / power) * c1)
            l2 = Relaxed.sum(l2, w * 0.5 * c1 * c1 / power)
        }
        return (Double(l1), Double(l2))
    }

    /// O += alpha h_O, P += alpha h_P.
    private func step(_ alpha: Double) {
        let a = Float(alpha)
        let o = floats(model.object.baseAddress), h = floats(objectDirection.baseAddress)
        for i in 0..<(2 * model.region.area) { o[i] += a * h[i] }
        guard updatesProbe else { return }
        let p = floats(model.probe.baseAddress), hp = floats(probeDirection.baseAddress)
        for i in 0..<(2 * pixels) { p[i] += a * hp[i] }
    }
}
