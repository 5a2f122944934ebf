import Foundation
import Numerics
import Parameters
import Recon
import SwiftFFTW

/// Regularised PIE (Maiden, Johnson & Li, Optica 4, 736, 2017) in
/// mini-batches: each batch's exit waves are projected in Fourier space,
/// then the object and the probe move by their changes d_j at once,
///
///     O += sum_j conj(P_j) d_j / ((1 - alpha) sum_j |P_j|^2 + alpha max |P|^2),
///     P += sum_j conj(O_j) d_j / ((1 - alpha) sum_j |O_j|^2 + alpha max sum_j |O_j|^2),
///
/// one epoch being every batch once. Batches take every K-th frame along a
/// Hilbert curve through the whole scan (`TileLayout.curvePlace`), so each
/// is spread evenly over the object: its frames rarely overlap, which makes
/// a batch update what sequential PIE would do frame by frame, and every
/// rank has frames in every batch. Pty-chi and ptychoshelves also offer
/// "compact" batches of neighbouring frames; on tiles those would leave all
/// ranks but one idle. The batches depend only on the scan, so N ranks make
/// the 1-rank iterations up to the order of floating-point sums.
///
/// It keeps nothing per frame, so it is the lightest engine on memory, and
/// a frame placed while it runs takes part in its batch from the next epoch.
public final class RegularizedPIEEngine: ReconstructionEngine {
    public static let defaultMinibatch = 64

    public static let kind = EngineKind(
        name: "rpie", summary: "regularised PIE in mini-batches spread over the object",
        parameters: [ParameterSpec("minibatch", .integer(1...65536), default: .integer(defaultMinibatch),
                                   doc: "rPIE's frames per mini-batch (spread over the object; object and probe move after each)"),
                     ParameterSpec("alpha", .number(1e-4...1), default: .number(0.1),
                                   doc: "rPIE's regularisation: updates divide by (1 - alpha) |P|^2 + alpha max |P|^2, likewise for the probe")],
        type: RegularizedPIEEngine.self, frameValues: 0)

    public let model: PtychoModel
    public private(set) var options: EngineOptions
    public var name: String { Self.kind.name }

    private let pixels: Int
    private let work: ComplexBuffer
    private let plans: BatchPlans
    private let project: FourierProjection
    /// Local frames of each batch in visiting order (those meeting a peer
    /// first), as of `model.activeChanges == listedChanges`.
    private var batches: [[Int]] = []
    private var listedChanges = -1
    private var listedMinibatch = 0
    private var sumsCleared = false
    /// The probe sums, numerator (complex, interleaved) then denominator, in
    /// one array so that one allreduce completes both; a shifted class's
    /// numerator is kept apart until it is shifted back.
    private let probeSums: UnsafeMutableBufferPointer<Float>
    private let classNumerators: ComplexBuffer
    private var classTouched: [Bool]
    private let residualSpectrum: ComplexBuffer
    private let iterationSums = UnsafeMutableBufferPointer<Double>.allocate(capacity: 2)
    /// The boxes this rank's region shares with peers, and their pixels.
    private let shared: [Box]
    private let sharedArea: Int

    public init(model: PtychoModel, options: EngineOptions) throws {
        try Self.check(options)
        self.model = model
        self.options = options
        pixels = model.pixels
        let batch = max(1, min(options.batch, options.minibatch, max(1, model.frameCount)))
        work = ComplexBuffer(count: batch * pixels)
        plans = try BatchPlans(frameSize: model.frameSize, batch: batch, rigor: options.fftPlanning.rigor)
        project = FourierProjection(model: model, powerBound: options.powerBound)
        probeSums = .allocate(capacity: 3 * pixels)
        probeSums.update(repeating: 0)
        let shifted = model.classes.anyShifted
        classNumerators = ComplexBuffer(count: shifted ? model.classes.count * pixels : 0)
        classTouched = [Bool](repeating: false, count: model.classes.count)
        residualSpectrum = ComplexBuffer(count: shifted ? pixels : 0)
        shared = model.sums.hasPeers ? model.layout.overlaps(of: model.comm.rank).map(\.box) : []
        sharedArea = shared.reduce(0) { $0 + $1.area }
    }

    deinit {
        probeSums.deallocate()
        iterationSums.deallocate()
    }

    private static func check(_ options: EngineOptions) throws {
        var problems = options.problems()
        if options.algorithm != kind.name { problems.append("algorithm: the rPIE engine is 'rpie', not '\(options.algorithm)'") }
        guard problems.isEmpty else { throw SimulationError.invalid(problems.joined(separator: "; ")) }
    }

    public func adjust(_ options: EngineOptions) throws {
        try Self.check(options)
        self.options = options
    }

    public func place(_ j: Int, amplitudes values: UnsafeBufferPointer<Float>) {
        model.place(j, amplitudes: values)
        project.frameMeasured(j)
    }

    /// Batches in the whole scan: ceil(frames / minibatch).
    private var batchCount: Int {
        let frames = model.layout.owner.count
        return max(1, (frames + options.minibatch - 1) / options.minibatch)
    }

    private func listBatches() {
        guard listedChanges != model.activeChanges || listedMinibatch != options.minibatch else { return }
        let k = batchCount
        batches = Array(repeating: [], count: k)
        let place = model.layout.curvePlace
        for j in model.active { batches[place[model.indices[j]] % k].append(j) }
        listedChanges = model.activeChanges
        listedMinibatch = options.minibatch
    }

    // MARK: Iteration

    @discardableResult
    public func iterate() throws -> IterationStats {
        let start = Date()
        let sums = iterationSums
        sums[0] = 0  // Fourier error
        sums[1] = 0  // measured intensity
        listBatches()
        let updateProbe = model.iteration >= options.probeUpdateStart
        // Another engine may have left the object sums as it used them; this
        // one leaves them zero after every batch.
        if !sumsCleared {
            model.sums.clear()
            sumsCleared = true
        }
        for frames in batches {
            // Frames meeting a peer come first; their sums go out while the rest are updated.
            let meeting = frames.prefix { model.visitRank[$0] < model.firstInnerRank }.count
            try sweep(frames[0..<meeting], sums)
            if model.sums.hasPeers { try model.sums.start() }
            try sweep(frames[meeting...], sums)
            var clock = SectionClock(on: model.profiling)
            try objectUpdate(frames)
            clock.lap(&model.profile.objectUpdate)
            try probeUpdate(apply: updateProbe)
            clock.lap(&model.profile.probeUpdate)
        }
        try model.comm.sum(sums)
        if model.profiling { model.profile.iterations += 1 }
        return model.record(fourierError: sums[1] > 0 ? sums[0] / sums[1] : 0, since: start)
    }

    /// The Fourier projection of `frames` and their shares of the object and probe sums.
    private func sweep(_ frames: ArraySlice<Int>, _ sums: UnsafeMutableBufferPointer<Double>) throws {
        let m = pixels
        let batch = work.count / m
        var first = frames.startIndex
        var clock = SectionClock(on: model.profiling)
        while first < frames.endIndex {
            let count = min(batch, frames.endIndex - first)
            let (fwd, inv) = try plans(count)
            for b in 0..<count { model.formExit(frames[first + b], into: work.baseAddress + b * m) }
            clock.lap(&model.profile.reflection)
            try fwd.execute(work.baseAddress, work.baseAddress, normalization: .none)
            clock.lap(&model.profile.transforms)
            for b in 0..<count {
                let j = frames[first + b]
                sums[0] += project(work.baseAddress + b * m, frame: j)
                sums[1] += Double(model.totals[j])
            }
            clock.lap(&model.profile.projection)
            try inv.execute(work.baseAddress, work.baseAddress, normalization: .none)
            clock.lap(&model.profile.transforms)
            for b in 0..<count { accumulate(frames[first + b], floats(work.baseAddress + b * m)) }
            clock.lap(&model.profile.exitUpdate)
            try model.sums.progress()
            first += count
        }
    }

    /// Adds frame j's residual shares, d = P_F(psi) - P O, to the object
    /// sums over its window and to its class's probe sums.
    @inline(__always)
    private func accumulate(_ j: Int, _ projected: UnsafeMutablePointer<Float>) {
        let n = model.frameSize, w = model.region.width
        let o = UnsafePointer(floats(model.object.baseAddress) + model.windowStart(j)), p = UnsafePointer(floats(model.probe(of: j)))
        let numO = floats(model.sums.numerator.baseAddress) + model.windowStart(j)
        let denO = model.sums.denominator + model.windowStart(j) / 2
        let c = model.classes.frameClass[j]
        let numP = model.classes.isShifted(c) ? floats(classNumerators.baseAddress + c * pixels) : probeSums.baseAddress!
        classTouched[c] = true
        let denP = probeSums.baseAddress! + 2 * pixels
        let scale = 1 / Float(pixels)
        for y in 0..<n {
            let k = 2 * y * n
            ComplexRows.pieResiduals(o + 2 * y * w, p + k, projected: projected + k, scale: scale,
                                     objectNumerator: numO + 2 * y * w, objectDenominator: denO + y * w,
                                     probeNumerator: numP + k, probeDenominator: denP + y * n, count: n)
        }
    }

    /// Moves the object by the batch's sums. Each pixel's sums are used once
    /// and zeroed, so overlapping windows apply them once and the next batch
    /// starts from zero. The pass goes over the batch's windows (with peers,
    /// also the shared boxes their frames may reach), or over the whole
    /// region where that is fewer pixels: a batch's windows cover a small
    /// scan's region several times.
    private func objectUpdate(_ frames: [Int]) throws {
        let sums = model.sums
        var largest: Float = 0
        let p = floats(model.probe.baseAddress)
        for i in 0..<pixels { largest = max(largest, p[2 * i] * p[2 * i] + p[2 * i + 1] * p[2 * i + 1]) }
        let alpha = Float(options.alpha)
        let eps = max(alpha * largest, .leastNormalMagnitude)
        let n = model.frameSize
        let own = (floats(sums.numerator.baseAddress), sums.denominator)
        func window(_ j: Int) -> Box {
            let c = model.corners[j]
            return Box(y0: c.y, x0: c.x, y1: c.y + n, x1: c.x + n)
        }
        let whole = model.region.area <= frames.count * n * n + sharedArea
        if sums.hasPeers {
            try sums.combine()
            let total = (floats(sums.totalNumerator.baseAddress), sums.totalDenominator)
            if whole {
                apply(model.region, total, alpha: alpha, eps: eps)
                clear(model.region, own)
            } else {
                for j in frames {
                    apply(window(j), total, alpha: alpha, eps: eps)
                    clear(window(j), own)
                }
                // Own sums are zero outside own windows already.
                for box in shared { apply(box, total, alpha: alpha, eps: eps) }
            }
        } else if whole {
            apply(model.region, own, alpha: alpha, eps: eps)
        } else {
            for j in frames { apply(window(j), own, alpha: alpha, eps: eps) }
        }
    }

    /// O += num / ((1 - alpha) den + eps) over `box`, and num = den = 0 there.
    private func apply(_ box: Box, _ s: (num: UnsafeMutablePointer<Float>, den: UnsafeMutablePointer<Float>), alpha: Float, eps: Float) {
        let region = model.region, w = region.width
        let o = floats(model.object.baseAddress)
        let keep = 1 - alpha
        for y in box.y0..<box.y1 {
            let row = (y - region.y0) * w + (box.x0 - region.x0)
            for i in row..<(row + box.width) {
                let inv = 1 / (keep * s.den[i] + eps)
                o[2 * i] += s.num[2 * i] * inv
                o[2 * i + 1] += s.num[2 * i + 1] * inv
                s.num[2 * i] = 0
                s.num[2 * i + 1] = 0
                s.den[i] = 0
            }
        }
    }

    private func clear(_ box: Box, _ s: (num: UnsafeMutablePointer<Float>, den: UnsafeMutablePointer<Float>)) {
        let region = model.region, w = region.width
        for y in box.y0..<box.y1 {
            let row = (y - region.y0) * w + (box.x0 - region.x0)
            (s.num + 2 * row).update(repeating: 0, count: 2 * box.width)
            (s.den + row).update(repeating: 0, count: box.width)
        }
    }

    /// Shifts the batch's class sums back, completes the probe sums over all
    /// ranks and, when `apply`, moves the probe; the sums start again from zero.
    private func probeUpdate(apply: Bool) throws {
        let num = probeSums.baseAddress!, den = num + 2 * pixels
        let classes = model.classes
        if apply && residualSpectrum.count > 0 {
            floats(residualSpectrum.baseAddress).update(repeating: 0, count: 2 * pixels)
            var any = false
            for c in 0..<classes.count where classTouched[c] && classes.isShifted(c) {
                let sums = classNumerators.baseAddress + c * pixels
                try model.transform(model.single.forward, sums)
                classes.shift(sums, into: residualSpectrum.baseAddress, ramps: c, inverse: true, adding: true)
                any = true
            }
            if any {
                try model.transform(model.single.inverse, residualSpectrum.baseAddress)
                let s = 1 / Float(pixels)
                let rs = floats(residualSpectrum.baseAddress)
                for i in 0..<(2 * pixels) { num[i] += rs[i] * s }
            }
        }
        if apply {
            try model.comm.sum(probeSums)
            var largest: Float = 0
            for i in 0..<pixels { largest = max(largest, den[i]) }
            if largest > 0 {
                let alpha = Float(options.alpha), keep = 1 - alpha
                let eps = alpha * largest
                let p = floats(model.probe.baseAddress)
                for i in 0..<pixels {
                    let inv = 1 / (keep * den[i] + eps)
                    p[2 * i] += num[2 * i] * inv
                    p[2 * i + 1] += num[2 * i + 1] * inv
                }
                try model.probeChanged()
            }
        }
        probeSums.update(repeating: 0)
        for c in 0..<classes.count where classTouched[c] {
            if classes.isShifted(c) { floats(classNumerators.baseAddress + c * pixels).update(repeating: 0, count: 2 * pixels) }
            classTouched[c] = false
        }
    }

    // MARK: State, for checkpoints

    /// Nothing beyond the object and the probe: an epoch starts from them alone.
    public var state: [EngineStatePart] { [] }
    public var stateNumbers: [String: Double] { [:] }
    public func restore(state saved: EngineState?) throws {}
}
