import Foundation
import Numerics
import Parameters
import Recon
import SwiftFFTW
import CCache

/// Difference map and RAAR as one projection engine with one coefficient:
///
///     psi_j += beta (P_F(2 phi_j - psi_j) - phi_j) + (1 - beta) (P_F(psi_j) - psi_j),
///
/// with phi_j = P O_j the overlap projection and P_F the Fourier (modulus)
/// projection. beta = 1 is the difference map (Thibault et al. 2009), whose
/// second term vanishes, so its transforms are skipped; beta in (0, 1) is
/// RAAR (Luke 2005). PtyPy writes such updates with three coefficients;
/// the two engines shipped here need only this one, and the registry
/// lists them as two entries of this type.
///
/// Per iteration: the Fourier update of every exit wave, the object update
/// (partial sums over the region, completed by exchanging overlaps with
/// the ranks whose regions meet this one), then the probe update (sums
/// reduced over all ranks). With one rank it is the serial algorithm.
///
/// With K probe modes every frame keeps K exit waves psi_jk (one per mode),
/// the Fourier projection scales them alike, the object sums take every
/// mode's share and each mode gets its own probe step. The modes are then
/// made orthogonal; the exit waves are mixed the same way, each frame's
/// just before its next update, while they are in cache anyway.
public final class ProjectionEngine: ReconstructionEngine {
    public static let defaultBeta = 0.75

    public static let differenceMap = EngineKind(
        name: "dm", summary: "difference map", type: ProjectionEngine.self, frameValues: 1, modes: true)

    public static let raar = EngineKind(
        name: "raar", summary: "relaxed averaged alternating reflections",
        parameters: [ParameterSpec("beta", .number(1e-6...1), default: .number(defaultBeta),
                                   doc: "RAAR relaxation (1 gives the difference map)")],
        type: ProjectionEngine.self, frameValues: 1, modes: true)

    public let model: PtychoModel
    public private(set) var options: EngineOptions
    public var name: String { options.algorithm }

    private let pixels: Int
    private let modes: Int
    /// Frame j's exit wave of mode k at (j modes + k) pixels.
    private let exitWaves: ComplexBuffer
    private let work: ComplexBuffer
    private let work2: ComplexBuffer
    private let plans: BatchPlans
    private let project: FourierProjection
    /// The probe sums, numerator (complex, interleaved) then denominator,
    /// in one array so that one allreduce completes both.
    private let probeSums: UnsafeMutableBufferPointer<Float>
    /// Probe-update scratch: one class's residual sums, and the spectrum of
    /// all classes' residuals shifted back.
    private let classNumerator: ComplexBuffer
    private let residualSpectrum: ComplexBuffer
    /// The probe step's |O|^2 sums for modes after the first (the same as the first's).
    private let scratchDenominator: UnsafeMutablePointer<Float>
    private let iterationSums = UnsafeMutableBufferPointer<Double>.allocate(capacity: 2)
    /// The modes' last orthogonalizing mix, and per frame whether its exit
    /// waves have had it (the mix's count when they had).
    private let pendingMix: UnsafeMutablePointer<Complex<Float>>
    private var mixes = 0
    private var mixedAt: [Int]

    public init(model: PtychoModel, options: EngineOptions) throws {
        try Self.check(options)
        self.model = model
        self.options = options
        let m = model.frameSize
        pixels = model.pixels
        modes = model.modes
        let frames = model.frameCount
        exitWaves = ComplexBuffer(count: frames * modes * pixels)
        mixedAt = [Int](repeating: 0, count: frames)
        pendingMix = .allocate(capacity: modes * modes)
        let batch = max(1, min(options.framesPerBatch, frames))
        work = ComplexBuffer(count: batch * modes * pixels)
        work2 = ComplexBuffer(count: batch * modes * pixels)
        probeSums = .allocate(capacity: (2 * modes + 1) * pixels)
        classNumerator = ComplexBuffer(count: pixels)
        residualSpectrum = ComplexBuffer(count: model.classes.anyShifted ? modes * pixels : 0)
        scratchDenominator = .allocate(capacity: modes > 1 ? pixels : 0)
        plans = try BatchPlans(frameSize: m, batch: batch * modes, rigor: options.fftPlanning.rigor)
        project = FourierProjection(model: model, powerBound: options.powerBound)
        try restore(state: nil)
    }

    deinit {
        iterationSums.deallocate()
        probeSums.deallocate()
        scratchDenominator.deallocate()
        pendingMix.deallocate()
    }

    private static func check(_ options: EngineOptions) throws {
        var problems = options.problems()
        if ![differenceMap.name, raar.name].contains(options.algorithm) {
            problems.append("algorithm: the projection engine runs dm or raar, not '\(options.algorithm)'")
        }
        guard problems.isEmpty else { throw SimulationError.invalid(problems.joined(separator: "; ")) }
    }

    public func adjust(_ options: EngineOptions) throws {
        try Self.check(options)
        self.options = options
    }

    /// DM's coefficient is 1 whatever `beta` holds.
    private var beta: Float { options.algorithm == Self.raar.name ? Float(options.beta) : 1 }

    public func place(_ j: Int, amplitudes values: UnsafeBufferPointer<Float>) {
        model.place(j, amplitudes: values)
        project.frameMeasured(j)
        formExits(j)
    }

    /// Frame j's exit waves from the model's object and probe modes.
    private func formExits(_ j: Int) {
        for k in 0..<modes { model.formExit(j, mode: k, into: exit(j, k)) }
        mixedAt[j] = mixes
    }

    @inline(__always)
    private func exit(_ j: Int, _ k: Int) -> UnsafeMutablePointer<Complex<Float>> {
        exitWaves.baseAddress + (j * modes + k) * pixels
    }

    /// Whether frame j's exit waves still need the modes' last mix (done
    /// row by row with the reflection); waves more than one mix behind (a
    /// frame left out meanwhile) are made afresh from the model here.
    @inline(__always)
    private func needsMix(_ j: Int) -> Bool {
        guard mixedAt[j] != mixes else { return false }
        if mixedAt[j] == mixes - 1 { return true }
        formExits(j)
        return false
    }

    /// Gives frame j's exit waves the modes' last mix now.
    private func catchUp(_ j: Int) {
        guard needsMix(j) else { return }
        ProbeModes.mix(exit(j, 0), count: modes, length: pixels, stride: pixels, by: pendingMix, scratch: model.modeScratch.baseAddress)
        mixedAt[j] = mixes
    }

    // MARK: Iteration

    @discardableResult
    public func iterate() throws -> IterationStats {
        let start = Date()
        let sums = iterationSums
        sums[0] = 0  // Fourier error
        sums[1] = 0  // measured intensity
        try fourierUpdate(sums)
        var clock = SectionClock(on: model.profiling)
        try objectUpdate()
        clock.lap(&model.profile.objectUpdate)
        if model.iteration >= options.probeUpdateStart { try probeUpdate() }
        if modes > 1 {
            model.orthogonalizeModes(mix: pendingMix)
            mixes += 1
            try model.probeChanged()
        }
        try model.comm.sum(sums)
        clock.lap(&model.profile.probeUpdate)
        if model.profiling { model.profile.iterations += 1 }
        return model.record(fourierError: sums[1] > 0 ? sums[0] / sums[1] : 0, since: start)
    }

    /// Updates every exit wave and, while each is in cache, adds its share
    /// to the object sums (with the probe the exit waves were made with).
    private func fourierUpdate(_ sums: UnsafeMutableBufferPointer<Double>) throws {
        model.sums.clear()
        // Frames meeting a peer's region first, then the sums it shares go
        // out while the rest are updated.
        let meeting = model.meetingPeers
        try sweep(0..<meeting, sums)
        if model.sums.hasPeers { try model.sums.start() }
        try sweep(meeting..<model.active.count, sums)
    }

    /// The Fourier update of `active[range]`, a batch at a time.
    private func sweep(_ range: Range<Int>, _ sums: UnsafeMutableBufferPointer<Double>) throws {
        let m = pixels, modes = self.modes
        let batch = work.count / (m * modes)
        let active = model.active
        var first = range.lowerBound
        let beta = self.beta
        let relaxed = beta != 1
        var clock = SectionClock(on: model.profiling)
        while first < range.upperBound {
            let count = min(batch, range.upperBound - first)
            let (fwd, inv) = try plans(count * modes)
            for b in 0..<count {
                let j = active[first + b]
                let mixing = modes > 1 && needsMix(j)
                if mixing && relaxed { catchUp(j) }
                if relaxed { (work2.baseAddress + b * modes * m).update(from: exit(j, 0), count: modes * m) }
                formReflections(j, mixing: mixing && !relaxed, into: work.baseAddress + b * modes * m)
            }
            clock.lap(&model.profile.reflection)
            try transform(fwd, relaxed)
            clock.lap(&model.profile.transforms)
            for b in 0..<count {
                let j = active[first + b]
                sums[0] += project(work.baseAddress + b * modes * m, modes: modes, frame: j)
                sums[1] += Double(model.totals[j])
                if relaxed { _ = project(work2.baseAddress + b * modes * m, modes: modes, frame: j) }
            }
            clock.lap(&model.profile.projection)
            try transform(inv, relaxed)
            clock.lap(&model.profile.transforms)
            for b in 0..<count {
                let j = active[first + b]
                for k in 0..<modes {
                    let w = (b * modes + k) * m
                    updateExitAndAccumulate(j, mode: k, floats(work.baseAddress + w),
                                            relaxed: relaxed ? floats(work2.baseAddress + w) : nil, beta: beta)
                }
            }
            clock.lap(&model.profile.exitUpdate)
            try model.sums.progress()
            first += count
        }
    }

    /// The batch's reflections, and with RAAR its exit waves, in place.
    private func transform(_ plan: FFTPlan2D, _ relaxed: Bool) throws {
        try plan.execute(work.baseAddress, work.baseAddress, normalization: .none)
        if relaxed { try plan.execute(work2.baseAddress, work2.baseAddress, normalization: .none) }
    }

    /// The reflections 2 P_k O - psi_jk over frame j's window, one mode after
    /// another into `reflections`; psi_jk is left as psi_jk - P_k O until its
    /// update (within the same batch). `mixing`: each row of the exit waves
    /// gets the modes' last mix first, while it is in cache.
    @inline(__always)
    private func formReflections(_ j: Int, mixing: Bool, into reflections: UnsafeMutablePointer<Complex<Float>>) {
        let n = model.frameSize, w = model.region.width
        let o = floats(model.object.baseAddress) + model.windowStart(j)
        for y in 0..<n {
            let row = y * n
            if mixing {
                ProbeModes.mix(exit(j, 0) + row, count: modes, length: n, stride: pixels, by: pendingMix,
                               scratch: model.modeScratch.baseAddress)
            }
            for k in 0..<modes {
                let p = floats(model.probe(of: j, mode: k)), psi = floats(exit(j, k)), r = floats(reflections + k * pixels)
                ComplexRows.reflection(o + 2 * y * w, p + 2 * row, psi + 2 * row, into: r + 2 * row, count: n)
            }
        }
        if mixing { mixedAt[j] = mixes }
    }

    /// psi_j += P_F(2 phi - psi_j) - phi (DM), or RAAR's
    /// beta (psi_j + P_F(2 phi - psi_j) - phi) + (1 - beta) P_F(psi_j), with
    /// phi = P O: the reflection left psi_j - phi in place, so the object is
    /// not read again. The new psi_j's share of the object sums (conj(P)
    /// psi_j, |P|^2) is added in the same pass, while the frame is in cache.
    @inline(__always)
    private func updateExitAndAccumulate(_ j: Int, mode k: Int, _ projected: UnsafeMutablePointer<Float>,
                                         relaxed projectedExit: UnsafeMutablePointer<Float>?, beta: Float) {
        let n = model.frameSize, w = model.region.width
        let p = floats(model.probe(of: j, mode: k)), den = model.sums.denominator
        let num = floats(model.sums.numerator.baseAddress)
        let psi = floats(exit(j, k))
        let corner = model.windowStart(j) / 2
        // The projections come from unnormalized inverse transforms.
        let scale = 1 / Float(pixels)
        // The sums' rows are short streams at the region's stride, which the
        // hardware prefetcher picks up late: fetch two rows ahead.
        let ahead = 2
        for y in 0..<n {
            let row = corner + y * w
            let k = 2 * y * n
            if y + ahead < n {
                let next = row + ahead * w
                var b = 0
                while b < 2 * n { nscache_prefetch_for_write(num + 2 * next + b); b += 16 }
                b = 0
                while b < n { nscache_prefetch_for_write(den + next + b); b += 16 }
            }
            if let projectedExit {
                ComplexRows.relaxedUpdate(p + k, psi + k, projected: projected + k, projectedExit: projectedExit + k,
                                          scale: scale, beta: beta, numerator: num + 2 * row,
                                          denominator: den + row, count: n)
            } else {
                ComplexRows.differenceMapUpdate(p + k, psi + k, projected: projected + k, scale: scale,
                                                numerator: num + 2 * row, denominator: den + row, count: n)
            }
        }
    }

    /// Completes the object sums over the overlaps and divides.
    private func objectUpdate() throws {
        let area = model.region.area
        let sums = model.sums
        try sums.combine()
        var largest: Float = 0
        for i in 0..<area { largest = max(largest, sums.totalDenominator[i]) }
        let eps = max(Float(options.objectRegularization * (try model.comm.maximum(Double(largest)))), .leastNormalMagnitude)
        let o = floats(model.object.baseAddress), tn = floats(sums.totalNumerator.baseAddress), td = sums.totalDenominator
        for i in 0..<area {
            let inv = 1 / (td[i] + eps)
            let re = (tn[2 * i] + eps) * inv, im = tn[2 * i + 1] * inv
            o[2 * i] = re
            o[2 * i + 1] = im
        }
    }

    /// One preconditioned least-squares step for each probe mode P_k under
    /// the model psi_jk = S_j(P_k) O_j, with S_j frame j's sub-pixel shift:
    /// P_k += sum_j S_j^-1(O_j* (psi_jk - S_j(P_k) O_j)) / (sum_j |O_j|^2 + eps).
    /// Residuals are summed per class and shifted back in Fourier space (one
    /// transform per class and mode, one inverse per mode). Its fixed point
    /// is the exact least-squares probe; dividing shifted-back sums instead
    /// is not, and is unstable where the shifts meet the Nyquist frequency.
    /// Without shifts the step is the usual division, with eps acting as inertia.
    private func probeUpdate() throws {
        let modes = self.modes
        let num = probeSums.baseAddress!, den = num + 2 * modes * pixels
        num.update(repeating: 0, count: 2 * modes * pixels)
        den.update(repeating: 0, count: pixels)
        let classes = model.classes
        let anyShifted = residualSpectrum.count > 0
        if anyShifted { floats(residualSpectrum.baseAddress).update(repeating: 0, count: 2 * modes * pixels) }
        let (fwd, inv) = model.single
        for c in 0..<classes.count where !model.classMembers[c].isEmpty {
            for k in 0..<modes {
                let sp = UnsafePointer(floats(classes.probe(ofClass: c, mode: k)))
                // |O|^2 is the same for every mode: summed with the first.
                let d = k == 0 ? den : scratchDenominator
                // The unshifted class's residuals are the step's own; a shifted
                // class's go back through Fourier space.
                if !classes.isShifted(c) {
                    accumulateResiduals(model.classMembers[c], mode: k, probe: sp, num + 2 * k * pixels, d)
                } else {
                    floats(classNumerator.baseAddress).update(repeating: 0, count: 2 * pixels)
                    accumulateResiduals(model.classMembers[c], mode: k, probe: sp, floats(classNumerator.baseAddress), d)
                    try model.transform(fwd, classNumerator.baseAddress)
                    classes.shift(classNumerator.baseAddress, into: residualSpectrum.baseAddress + k * pixels, ramps: c,
                                  inverse: true, adding: true)
                }
            }
        }
        if anyShifted {
            let s = 1 / Float(pixels)
            for k in 0..<modes {
                try model.transform(inv, residualSpectrum.baseAddress + k * pixels)
                let rs = floats(residualSpectrum.baseAddress + k * pixels), nk = num + 2 * k * pixels
                for i in 0..<(2 * pixels) { nk[i] += rs[i] * s }
            }
        }
        try model.comm.sum(probeSums)
        var largest: Float = 0
        for i in 0..<pixels { largest = max(largest, den[i]) }
        let eps = max(Float(options.probeRegularization) * largest, .leastNormalMagnitude)
        for k in 0..<modes {
            let p = floats(model.mode(k)), nk = num + 2 * k * pixels
            for i in 0..<pixels {
                let inv = 1 / (den[i] + eps)
                p[2 * i] += nk[2 * i] * inv
                p[2 * i + 1] += nk[2 * i + 1] * inv
            }
        }
        // Several modes are orthogonalized next, and their copies remade then.
        if modes == 1 { try model.probeChanged() }
    }

    /// Adds O_j* (psi_j - O_j P) and |O_j|^2 over the windows of `frames`
    /// (of one class, P its shifted probe), in order, four frames to a pass
    /// over the sums.
    private func accumulateResiduals(_ frames: [Int], mode m: Int, probe p: UnsafePointer<Float>, _ num: UnsafeMutablePointer<Float>,
                                     _ den: UnsafeMutablePointer<Float>) {
        let n = model.frameSize, w = model.region.width
        let o = UnsafePointer(floats(model.object.baseAddress))
        var k = 0
        while k + 4 <= frames.count {
            let j = (frames[k], frames[k + 1], frames[k + 2], frames[k + 3])
            let base = (model.windowStart(j.0), model.windowStart(j.1), model.windowStart(j.2), model.windowStart(j.3))
            let psi = (exitRows(j.0, m), exitRows(j.1, m), exitRows(j.2, m), exitRows(j.3, m))
            for y in 0..<n {
                let r = 2 * y * w, q = 2 * y * n
                ComplexRows.probeResiduals((o + base.0 + r, o + base.1 + r, o + base.2 + r, o + base.3 + r),
                                           (psi.0 + q, psi.1 + q, psi.2 + q, psi.3 + q), probe: p + q,
                                           numerator: num + q, denominator: den + y * n, count: n)
            }
            k += 4
        }
        while k < frames.count {
            let base = model.windowStart(frames[k]), psi = exitRows(frames[k], m)
            for y in 0..<n {
                ComplexRows.probeResiduals(o + base + 2 * y * w, psi + 2 * y * n, probe: p + 2 * y * n,
                                           numerator: num + 2 * y * n, denominator: den + y * n, count: n)
            }
            k += 1
        }
    }

    @inline(__always)
    private func exitRows(_ j: Int, _ k: Int) -> UnsafePointer<Float> {
        UnsafePointer(floats(exit(j, k)))
    }

    // MARK: State, for checkpoints

    /// The exit waves: DM and RAAR go on from (psi, O, P) alone, so a run
    /// resumed from them makes the iteration an uninterrupted one would.
    /// Every frame's have had the modes' last mix by then.
    public var state: [EngineStatePart] {
        if modes > 1 { for j in 0..<model.frameCount where mixedAt[j] == mixes - 1 { catchUp(j) } }
        return [EngineStatePart(name: "exit_waves", shape: .frames, layers: modes, values: UnsafeBufferPointer(exitWaves.buffer))]
    }
    public var stateNumbers: [String: Double] { [:] }

    public func restore(state saved: EngineState?) throws {
        guard let saved else {
            // Exit waves start as probe x object.
            for j in 0..<model.frameCount { formExits(j) }
            return
        }
        let values = try saved.part("exit_waves", count: exitWaves.count)
        exitWaves.baseAddress.update(from: values, count: values.count)
        for j in 0..<model.frameCount { mixedAt[j] = mixes }
    }
}
