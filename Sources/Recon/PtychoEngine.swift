import Foundation
import Numerics
import SwiftFFTW
import CCache

/// Difference map and RAAR on this rank's region of the object.
///
/// Per iteration: the Fourier update of every exit wave, the object update
/// (partial sums over the region, completed by exchanging overlaps with the
/// ranks whose regions meet this one), then the probe update (sums
/// reduced over all ranks). The engine never sees how sums are combined
/// beyond `Collective`; with one rank it is the serial algorithm.
///
/// Sub-pixel positions: each frame's offset from its whole-pixel window is
/// rounded to 1/`subpixelSteps` of a pixel, and frames with the same
/// rounded offset form a class that shares one Fourier-shifted copy of the
/// probe. The shifted copies are remade after each probe update (one
/// transform per class), and the probe update shifts each class's sums
/// back before dividing, so the model matches the measured frames without
/// any per-frame cost beyond the two transforms of the projection.
///
/// Every pass visits frames along a Hilbert curve through their windows
/// rather than in scan order (a spiral's scan order jumps across the
/// object), so each frame's object rows are mostly still in cache from the
/// frame before; the probe pass does the same within each class. Frames
/// whose windows meet another rank's region go first, so the sums shared
/// with that rank are sent while the remaining frames are updated.
public final class PtychoEngine {
    public private(set) var options: EngineOptions
    public let layout: TileLayout
    public let frameSize: Int
    public let region: Box
    public private(set) var iteration = 0
    public private(set) var history: [IterationStats] = []
    /// Times the sections of each iteration into `profile` (a clock read per batch and section).
    public var profiling = false
    public var profile = IterationProfile()

    private let comm: Collective
    /// Window corners of this rank's frames (the amplitudes live in `amplitudes` only).
    private let corners: [(y: Int, x: Int)]
    private let frameCount: Int
    private let pixels: Int
    private let mask: UnsafeMutablePointer<Float>
    private let exitWaves: ComplexBuffer
    private let work: ComplexBuffer
    private let work2: ComplexBuffer
    /// The object on the region, and its sums (partial, then combined).
    private let object: ComplexBuffer
    private let objectNumerator: ComplexBuffer
    private let objectDenominator: UnsafeMutablePointer<Float>
    private let totalNumerator: ComplexBuffer
    private let totalDenominator: UnsafeMutablePointer<Float>
    private let probe: ComplexBuffer
    /// The probe sums, numerator (complex, interleaved) then denominator,
    /// in one array so that one allreduce completes both.
    private let probeSums: UnsafeMutableBufferPointer<Float>
    /// Sub-pixel shift classes: each frame's class, each class's shift and
    /// its spectrum factors (rows then columns), the probe shifted for each,
    /// and the measured frames of each.
    private let frameClass: [Int]
    private let classShifts: [(y: Double, x: Double)]
    private let classRamps: ComplexBuffer
    private let shiftedProbes: ComplexBuffer
    private var classMembers: [[Int]] = []
    /// Probe-update scratch: one class's residual sums, and the spectrum of all
    /// classes' residuals shifted back.
    private let classNumerator: ComplexBuffer
    private let residualSpectrum: ComplexBuffer
    private let support: UnsafeMutablePointer<Float>?
    private let forward: FFTPlan2D
    private let inverse: FFTPlan2D
    /// Plans for a last, shorter batch, made once per size.
    private var shortPlans: [Int: (FFTPlan2D, FFTPlan2D)] = [:]
    private let amplitudes: UnsafeMutablePointer<Float>
    /// Per frame: the amplitude misfit below which it is left as it is.
    private let bounds: UnsafeMutablePointer<Float>
    /// Scratch of the Fourier projection: one frame's model magnitudes.
    private let magnitudes: UnsafeMutablePointer<Float>
    /// Per frame: the measured photons on valid pixels.
    private let totals: UnsafeMutablePointer<Float>
    private var active: [Int]
    /// Each frame's place in the order the passes visit frames (`LocalFrames.visitOrder`).
    private let visitRank: [Int]
    /// Frames whose windows meet a peer's region come first in visiting
    /// order (those with a visit rank below this): once they are updated the
    /// shared sums are complete, and the exchange runs during the others.
    private let firstInnerRank: Int
    /// The overlap sums' exchange, set up once; running between its start
    /// in the Fourier update and the object update.
    private let exchange: Exchange
    private var exchangeRunning = false
    private let peers: [(peer: Int, box: Box, send: ComplexBuffer, sendReal: UnsafeMutableBufferPointer<Float>,
                         receive: ComplexBuffer, receiveReal: UnsafeMutableBufferPointer<Float>)]
    private let iterationSums = UnsafeMutableBufferPointer<Double>.allocate(capacity: 2)

    public init(comm: Collective, layout: TileLayout, frames: LocalFrames, mask: [Float],
                probe initialProbe: Array2D<Complex<Float>>, options: EngineOptions) throws {
        let problems = options.problems()
        guard problems.isEmpty else { throw SimulationError.invalid(problems.joined(separator: "; ")) }
        let m = layout.frameSize
        guard initialProbe.height == m, initialProbe.width == m else {
            throw SimulationError.invalid("the initial probe is \(initialProbe.height)x\(initialProbe.width), the frames \(m)x\(m)")
        }
        guard mask.count == m * m, frames.amplitudes.count == frames.count * m * m, frames.weights.count == frames.count else {
            throw SimulationError.invalid("frames, mask and weights do not match the \(m)x\(m) frame size")
        }
        self.comm = comm
        self.layout = layout
        self.options = options
        corners = frames.corners
        frameCount = frames.count
        frameSize = m
        pixels = m * m
        region = layout.regions[comm.rank]

        self.mask = .allocate(capacity: pixels)
        self.mask.initialize(from: mask, count: pixels)
        exitWaves = ComplexBuffer(count: frames.count * pixels)
        let batch = max(1, min(options.batch, frames.count))
        work = ComplexBuffer(count: batch * pixels)
        work2 = ComplexBuffer(count: batch * pixels)
        object = ComplexBuffer(count: region.area, fill: Complex(1, 0))

        objectNumerator = ComplexBuffer(count: region.area)
        objectDenominator = .allocate(capacity: region.area)
        totalNumerator = ComplexBuffer(count: region.area)
        totalDenominator = .allocate(capacity: region.area)
        probe = ComplexBuffer(initialProbe.values)
        probeSums = .allocate(capacity: 3 * pixels)
        guard frames.offsets.count == frames.count,
              frames.offsets.allSatisfy({ abs($0.y) <= 1 && abs($0.x) <= 1 }) else {
            throw SimulationError.invalid("frame offsets must be one per frame and within a pixel of the window corner")
        }
        let steps = Double(options.subpixelSteps)
        var classIndex: [Int: Int] = [:], shifts: [(y: Double, x: Double)] = [], classes: [Int] = []
        for o in frames.offsets {
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
        classShifts = shifts
        classRamps = ComplexBuffer(count: shifts.count * 2 * m)
        for (c, d) in shifts.enumerated() {
            (classRamps.baseAddress + 2 * c * m).initialize(from: shiftRamp(m, d.y), count: m)
            (classRamps.baseAddress + (2 * c + 1) * m).initialize(from: shiftRamp(m, d.x), count: m)
        }
        shiftedProbes = ComplexBuffer(count: shifts.count * pixels)
        let shifted = shifts.contains { $0 != (0, 0) }
        classNumerator = ComplexBuffer(count: pixels)
        residualSpectrum = ComplexBuffer(count: shifted ? pixels : 0)
        if let radius = options.probeSupport {
            let s = UnsafeMutablePointer<Float>.allocate(capacity: pixels)
            let r = radius * Double(m) / 2
            for y in 0..<m { for x in 0..<m {
                s[y * m + x] = hypot(Double(y - m / 2), Double(x - m / 2)) <= r ? 1 : 0
            } }
            support = s
        } else {
            support = nil
        }
        forward = try FFTPlan2D(height: m, width: m, batch: batch, direction: .forward, inPlace: true, rigor: options.fftPlanning.rigor)
        inverse = try FFTPlan2D(height: m, width: m, batch: batch, direction: .inverse, inPlace: true, rigor: options.fftPlanning.rigor)
        amplitudes = .allocate(capacity: max(1, frames.amplitudes.count))
        HugePages.advise(amplitudes, bytes: frames.amplitudes.count * MemoryLayout<Float>.stride)
        amplitudes.initialize(from: frames.amplitudes, count: frames.amplitudes.count)
        bounds = .allocate(capacity: max(1, frames.count))
        magnitudes = .allocate(capacity: pixels)
        totals = .allocate(capacity: max(1, frames.count))
        for j in 0..<frames.count {
            (totals[j], bounds[j]) = Self.measure(amplitudes + j * pixels, mask: self.mask, pixels: pixels, bound: options.powerBound)
        }
        let overlaps = layout.overlaps(of: comm.rank)
        let (order, meetingPeers) = frames.visitOrder(cell: max(1, m / 8), size: m, shared: overlaps.map(\.box))
        var rank = [Int](repeating: 0, count: frames.count)
        for (r, j) in order.enumerated() { rank[j] = r }
        visitRank = rank
        firstInnerRank = meetingPeers
        active = order.filter { frames.weights[$0] > 0 }
        classMembers = shifts.map { _ in [] }
        for j in active { classMembers[classes[j]].append(j) }

        peers = overlaps.map { o in
            (o.peer, o.box, ComplexBuffer(count: o.box.area), UnsafeMutableBufferPointer<Float>.allocate(capacity: o.box.area),
             ComplexBuffer(count: o.box.area), UnsafeMutableBufferPointer<Float>.allocate(capacity: o.box.area))
        }
        exchange = try comm.makeExchange(peers.map {
            PeerTransfer(peer: $0.peer, sendComplex: UnsafeBufferPointer($0.send.buffer), sendReal: UnsafeBufferPointer($0.sendReal),
                         receiveComplex: $0.receive.buffer, receiveReal: $0.receiveReal)
        })
        applySupport()
        try shiftProbes()
        // Exit waves start as probe x object.
        for j in 0..<frameCount { formExit(j, into: exitWaves.baseAddress + j * pixels) }
    }

    deinit {
        // An iteration cut short by an error: MPI must be done with the
        // buffers before they are freed.
        if exchangeRunning { try? exchange.wait() }
        amplitudes.deallocate()
        bounds.deallocate()
        magnitudes.deallocate()
        totals.deallocate()
        iterationSums.deallocate()
        mask.deallocate()
        objectDenominator.deallocate()
        totalDenominator.deallocate()
        probeSums.deallocate()
        support?.deallocate()
        for p in peers { p.sendReal.deallocate(); p.receiveReal.deallocate() }
    }

    /// Marks frames measured (1) or not yet (0), e.g. while a scan streams in.
    public func setWeights(_ weights: [Float]) {
        precondition(weights.count == frameCount)
        active = weights.indices.filter { weights[$0] > 0 }.sorted { visitRank[$0] < visitRank[$1] }
        classMembers = classShifts.map { _ in [] }
        for j in active { classMembers[frameClass[j]].append(j) }
    }

    /// A frame measured while the solver runs: its amplitudes replace the
    /// zeros it was made with, its exit wave restarts from the current probe
    /// and object, and it takes weight 1 from the next iteration on.
    public func place(_ j: Int, amplitudes values: UnsafeBufferPointer<Float>) {
        precondition(j >= 0 && j < frameCount && values.count == pixels)
        (amplitudes + j * pixels).update(from: values.baseAddress!, count: pixels)
        (totals[j], bounds[j]) = Self.measure(amplitudes + j * pixels, mask: mask, pixels: pixels, bound: options.powerBound)
        formExit(j, into: exitWaves.baseAddress + j * pixels)
        if insertInVisitOrder(j, into: &active) {
            _ = insertInVisitOrder(j, into: &classMembers[frameClass[j]])
        }
    }

    /// Inserts frame j into a list kept in visiting order, unless it is
    /// there; says whether it was inserted.
    private func insertInVisitOrder(_ j: Int, into list: inout [Int]) -> Bool {
        var low = 0, high = list.count
        while low < high {
            let mid = (low + high) / 2
            if visitRank[list[mid]] < visitRank[j] { low = mid + 1 } else { high = mid }
        }
        if low < list.count && list[low] == j { return false }
        list.insert(j, at: low)
        return true
    }

    /// Switches engine or relaxation between iterations (a live session's `set`).
    public func setRelaxation(algorithm: Algorithm, beta: Double) throws {
        var o = options
        o.algorithm = algorithm
        o.beta = beta
        let problems = o.problems()
        guard problems.isEmpty else { throw SimulationError.invalid(problems.joined(separator: "; ")) }
        options = o
    }

    /// Frames taking part in the iterations.
    public var activeFrames: Int { active.count }

    /// A frame's measured photons on valid pixels and the misfit its power bound allows.
    private static func measure(_ a: UnsafePointer<Float>, mask: UnsafePointer<Float>, pixels: Int,
                                bound: PowerBound) -> (total: Float, bound: Float) {
        let misfit = ExpectedPoissonMisfit()
        var total = 0.0, noise = 0.0
        for i in 0..<pixels where mask[i] > 0 {
            let v = Double(a[i])
            total += v * v
            noise += misfit(v * v)
        }
        return switch bound {
        case .none: (Float(total), 0)
        case .relative(let r): (Float(total), Float(0.25 * r * r * total))
        case .poisson(let k): (Float(total), Float(k * noise))
        }
    }

    // MARK: Iteration

    @discardableResult
    public func iterate() throws -> IterationStats {
        let start = Date()
        let sums = iterationSums
        sums[0] = 0  // Fourier error
        sums[1] = 0  // measured intensity
        try fourierUpdate(sums)
        var clock = SectionClock(on: profiling)
        try objectUpdate()
        clock.lap(&profile.objectUpdate)
        if iteration >= options.probeUpdateStart { try probeUpdate() }
        try comm.sum(sums)
        clock.lap(&profile.probeUpdate)
        if profiling { profile.iterations += 1 }
        let stats = IterationStats(iteration: iteration, fourierError: sums[1] > 0 ? sums[0] / sums[1] : 0,
                                   seconds: Date().timeIntervalSince(start))
        history.append(stats)
        iteration += 1
        return stats
    }

    /// Updates every exit wave and, while each is in cache, adds its share
    /// to the object sums (with the probe the exit waves were made with).
    private func fourierUpdate(_ sums: UnsafeMutableBufferPointer<Double>) throws {
        floats(objectNumerator.baseAddress).update(repeating: 0, count: 2 * region.area)
        objectDenominator.update(repeating: 0, count: region.area)
        // Frames meeting a peer's region first, then the sums it shares go
        // out while the rest are updated.
        var low = 0, high = active.count
        while low < high {
            let mid = (low + high) / 2
            if visitRank[active[mid]] < firstInnerRank { low = mid + 1 } else { high = mid }
        }
        try sweep(0..<low, sums)
        if !peers.isEmpty { try startOverlapExchange() }
        try sweep(low..<active.count, sums)
    }

    /// The Fourier update of `active[range]`, a batch at a time.
    private func sweep(_ range: Range<Int>, _ sums: UnsafeMutableBufferPointer<Double>) throws {
        let m = pixels
        let batch = work.count / m
        var first = range.lowerBound
        let raar = options.algorithm == .raar
        let beta = Float(options.beta)
        var clock = SectionClock(on: profiling)
        while first < range.upperBound {
            let count = min(batch, range.upperBound - first)
            let (fwd, inv) = count == batch ? (forward, inverse) : try shortPlan(count)
            for b in 0..<count {
                let j = active[first + b]
                if raar { (work2.baseAddress + b * m).update(from: exitWaves.baseAddress + j * m, count: m) }
                formReflection(j, into: work.baseAddress + b * m)
            }
            clock.lap(&profile.reflection)
            try fwd.execute(work.baseAddress, work.baseAddress, normalization: .none)
            if raar { try fwd.execute(work2.baseAddress, work2.baseAddress, normalization: .none) }
            clock.lap(&profile.transforms)
            for b in 0..<count {
                let j = active[first + b]
                let amplitude = UnsafePointer(amplitudes + j * m)
                sums[0] += project(work.baseAddress + b * m, amplitude, bound: bounds[j])
                sums[1] += Double(totals[j])
                if raar { _ = project(work2.baseAddress + b * m, amplitude, bound: bounds[j]) }
            }
            clock.lap(&profile.projection)
            try inv.execute(work.baseAddress, work.baseAddress, normalization: .none)
            if raar { try inv.execute(work2.baseAddress, work2.baseAddress, normalization: .none) }
            clock.lap(&profile.transforms)
            for b in 0..<count {
                let j = active[first + b]
                if raar {
                    updateExitAndAccumulate(j, floats(work.baseAddress + b * m), raar: floats(work2.baseAddress + b * m), beta: beta)
                } else {
                    updateExitAndAccumulate(j, floats(work.baseAddress + b * m), raar: nil, beta: 1)
                }
            }
            clock.lap(&profile.exitUpdate)
            if exchangeRunning { try exchange.progress() }
            first += count
        }
    }

    private func shortPlan(_ count: Int) throws -> (FFTPlan2D, FFTPlan2D) {
        if let plans = shortPlans[count] { return plans }
        let rigor = options.fftPlanning.rigor
        let plans = (try FFTPlan2D(height: frameSize, width: frameSize, batch: count, direction: .forward, inPlace: true, rigor: rigor),
                     try FFTPlan2D(height: frameSize, width: frameSize, batch: count, direction: .inverse, inPlace: true, rigor: rigor))
        shortPlans[count] = plans
        return plans
    }

    /// Replaces Fourier magnitudes by the measured ones on valid pixels (as
    /// far as the power bound asks); masked pixels keep the model. The
    /// result stays at the forward transform's scale: the exit-wave update
    /// applies 1/pixels after the unnormalized inverse, so a frame already
    /// within its bound costs no pass here.
    /// Returns the sum of squared amplitude errors over valid pixels.
    ///
    /// Both passes are branch-free so they vectorize.
    @inline(__always)
    private func project(_ spectrum: UnsafeMutablePointer<Complex<Float>>, _ amplitude: UnsafePointer<Float>,
                         bound: Float) -> Double {
        let f = floats(spectrum)
        let s = 1 / Float(pixels).squareRoot()
        // The model's magnitudes, kept for the update below (no second square
        // root), and the misfit, in one plain loop: the compiler deinterleaves
        // re and im cleanly, and the relaxed sum lets it keep partial sums in
        // vector lanes (explicit lanes here make it gather the loads element
        // by element).
        let model = magnitudes
        var error: Float = 0
        for i in 0..<pixels {
            let re = f[2 * i], im = f[2 * i + 1]
            let a = (re * re + im * im).squareRoot() * s
            model[i] = a
            let d = a - amplitude[i]
            error = Relaxed.sum(error, mask[i] * d * d)
        }
        // Fraction of the misfit that remains: 0 is the exact projection.
        let keep: Float = error > bound && error > 0 ? (bound / error).squareRoot() : 1
        if keep >= 1 { return Double(error) }
        let unscaled = 1 / s
        for k in 0..<pixels {
            let re = f[2 * k], im = f[2 * k + 1]
            let a = model[k]
            let target = amplitude[k], w = mask[k]
            // New magnitude target + keep (a - target), at the transform's
            // scale; a zero model amplitude takes the target with phase 0.
            let nonzero = a > 1e-30
            let projected = (target + keep * (a - target)) / (nonzero ? a : 1)
            let factor = w * projected + (1 - w)
            f[2 * k] = nonzero ? re * factor : w * target * unscaled + (1 - w) * re
            f[2 * k + 1] = im * factor
        }
        return Double(error)
    }

    /// P x O over frame j's window.
    @inline(__always)
    private func formExit(_ j: Int, into out: UnsafeMutablePointer<Complex<Float>>) {
        let n = frameSize, w = region.width
        let c = corners[j]
        let o = floats(object.baseAddress), p = floats(probe(of: j)), d = floats(out)
        for y in 0..<n {
            let k = 2 * y * n
            ComplexRows.product(o + 2 * ((c.y - region.y0 + y) * w + (c.x - region.x0)), p + k, into: d + k, count: n)
        }
    }

    /// The reflection 2 P O - psi_j over frame j's window; psi_j is left as
    /// psi_j - P O until its update (within the same batch).
    @inline(__always)
    private func formReflection(_ j: Int, into reflection: UnsafeMutablePointer<Complex<Float>>) {
        let n = frameSize, w = region.width
        let c = corners[j]
        let o = floats(object.baseAddress), p = floats(probe(of: j)), r = floats(reflection)
        let psi = floats(exitWaves.baseAddress + j * pixels)
        for y in 0..<n {
            let k = 2 * y * n
            ComplexRows.reflection(o + 2 * ((c.y - region.y0 + y) * w + (c.x - region.x0)), p + k, psi + k, into: r + k, count: n)
        }
    }

    /// psi_j += P_F(2 phi - psi_j) - phi (DM), or RAAR's
    /// beta (psi_j + P_F(2 phi - psi_j) - phi) + (1 - beta) P_F(psi_j), with
    /// phi = P O: the reflection left psi_j - phi in place, so the object is
    /// not read again. The new psi_j's share of the object sums (conj(P)
    /// psi_j, |P|^2) is added in the same pass, while the frame is in cache.
    @inline(__always)
    private func updateExitAndAccumulate(_ j: Int, _ projected: UnsafeMutablePointer<Float>,
                                         raar projectedExit: UnsafeMutablePointer<Float>?, beta: Float) {
        let n = frameSize, w = region.width
        let c = corners[j]
        let p = floats(probe(of: j)), num = floats(objectNumerator.baseAddress)
        let psi = floats(exitWaves.baseAddress + j * pixels)
        // The projections come from unnormalized inverse transforms.
        let scale = 1 / Float(pixels)
        // The sums' rows are short streams at the region's stride, which the
        // hardware prefetcher picks up late: fetch two rows ahead.
        let ahead = 2
        for y in 0..<n {
            let row = (c.y - region.y0 + y) * w + (c.x - region.x0)
            let k = 2 * y * n
            if y + ahead < n {
                let next = row + ahead * w
                var b = 0
                while b < 2 * n { nscache_prefetch_for_write(num + 2 * next + b); b += 16 }
                b = 0
                while b < n { nscache_prefetch_for_write(objectDenominator + next + b); b += 16 }
            }
            if let projectedExit {
                ComplexRows.relaxedUpdate(p + k, psi + k, projected: projected + k, projectedExit: projectedExit + k,
                                          scale: scale, beta: beta, numerator: num + 2 * row,
                                          denominator: objectDenominator + row, count: n)
            } else {
                ComplexRows.differenceMapUpdate(p + k, psi + k, projected: projected + k, scale: scale,
                                                numerator: num + 2 * row,
                                                denominator: objectDenominator + row, count: n)
            }
        }
    }

    /// Completes the object sums over the overlaps and divides.
    private func objectUpdate() throws {
        let area = region.area
        try combineOverlaps()
        var largest: Float = 0
        for i in 0..<area { largest = max(largest, totalDenominator[i]) }
        let eps = max(Float(options.objectRegularization * (try comm.maximum(Double(largest)))), .leastNormalMagnitude)
        let o = floats(object.baseAddress), tn = floats(totalNumerator.baseAddress)
        for i in 0..<area {
            let inv = 1 / (totalDenominator[i] + eps)
            let re = (tn[2 * i] + eps) * inv, im = tn[2 * i + 1] * inv
            o[2 * i] = re
            o[2 * i + 1] = im
        }
    }

    /// Completes the region's sums: every rank adds the contributions of all
    /// ranks holding a pixel in rank order, so shared pixels come out
    /// bit-identical on every rank that holds them.
    private func combineOverlaps() throws {
        let w = region.width, area = region.area
        if !exchangeRunning { try startOverlapExchange() }
        try exchange.wait()
        exchangeRunning = false
        let tn = floats(totalNumerator.baseAddress)
        // With no rank before this one, its own sums come first everywhere:
        // 0 + x in one pass (x + 0 keeps 0 + x's rounding, -0 included).
        let ownFirst = peers.allSatisfy { $0.peer > comm.rank }
        if !ownFirst {
            tn.update(repeating: 0, count: 2 * area)
            totalDenominator.update(repeating: 0, count: area)
        }
        var next = 0
        for q in 0..<comm.size {
            if q == comm.rank {
                let n = floats(objectNumerator.baseAddress)
                if ownFirst {
                    for i in 0..<(2 * area) { tn[i] = n[i] + 0 }
                    for i in 0..<area { totalDenominator[i] = objectDenominator[i] + 0 }
                } else {
                    for i in 0..<(2 * area) { tn[i] += n[i] }
                    for i in 0..<area { totalDenominator[i] += objectDenominator[i] }
                }
            } else if next < peers.count && peers[next].peer == q {
                let p = peers[next]
                let r = floats(p.receive.baseAddress), rr = p.receiveReal.baseAddress!
                let bw = p.box.width
                for y in 0..<p.box.height {
                    let row = (p.box.y0 - region.y0 + y) * w + (p.box.x0 - region.x0)
                    for x in 0..<bw {
                        tn[2 * (row + x)] += r[2 * (y * bw + x)]
                        tn[2 * (row + x) + 1] += r[2 * (y * bw + x) + 1]
                        totalDenominator[row + x] += rr[y * bw + x]
                    }
                }
                next += 1
            }
        }
    }

    /// Sends this rank's sums over each peer's box (complete once the
    /// frames meeting peers are updated) and receives the peers'.
    private func startOverlapExchange() throws {
        for p in peers {
            copy(box: p.box, from: objectNumerator.baseAddress, objectDenominator, into: p.send.baseAddress, p.sendReal.baseAddress!)
        }
        try exchange.start()
        exchangeRunning = true
    }

    private func copy(box: Box, from num: UnsafeMutablePointer<Complex<Float>>, _ den: UnsafeMutablePointer<Float>,
                      into out: UnsafeMutablePointer<Complex<Float>>, _ outReal: UnsafeMutablePointer<Float>) {
        let w = region.width, bw = box.width
        for y in 0..<box.height {
            let row = (box.y0 - region.y0 + y) * w + (box.x0 - region.x0)
            (out + y * bw).update(from: num + row, count: bw)
            (outReal + y * bw).update(from: den + row, count: bw)
        }
    }

    /// One preconditioned least-squares step for the probe P under the model
    /// psi_j = S_j(P) O_j, with S_j frame j's sub-pixel shift:
    /// P += sum_j S_j^-1(O_j* (psi_j - S_j(P) O_j)) / (sum_j |O_j|^2 + eps).
    /// Residuals are summed per class and shifted back in Fourier space (one
    /// transform per class, one inverse). Its fixed point is the exact
    /// least-squares probe; dividing shifted-back sums instead is not, and
    /// is unstable where the shifts meet the Nyquist frequency. Without
    /// shifts the step is the usual division, with eps acting as inertia.
    private func probeUpdate() throws {
        let num = probeSums.baseAddress!, den = num + 2 * pixels
        num.update(repeating: 0, count: 2 * pixels)
        den.update(repeating: 0, count: pixels)
        let anyShifted = residualSpectrum.count > 0
        if anyShifted { floats(residualSpectrum.baseAddress).update(repeating: 0, count: 2 * pixels) }
        let (fwd, inv) = try singlePlans()
        for c in classShifts.indices where !classMembers[c].isEmpty {
            let sp = UnsafePointer(floats(shiftedProbes.baseAddress + c * pixels))
            // The unshifted class's residuals are the step's own; a shifted
            // class's go back through Fourier space.
            if classShifts[c] == (0, 0) {
                accumulateResiduals(classMembers[c], probe: sp, num, den)
            } else {
                floats(classNumerator.baseAddress).update(repeating: 0, count: 2 * pixels)
                accumulateResiduals(classMembers[c], probe: sp, floats(classNumerator.baseAddress), den)
                try transform(fwd, classNumerator.baseAddress)
                shift(classNumerator.baseAddress, into: residualSpectrum.baseAddress, ramps: c, inverse: true, adding: true)
            }
        }
        if anyShifted {
            try transform(inv, residualSpectrum.baseAddress)
            let s = 1 / Float(pixels)
            let rs = floats(residualSpectrum.baseAddress)
            for i in 0..<(2 * pixels) { num[i] += rs[i] * s }
        }
        try comm.sum(probeSums)
        var largest: Float = 0
        for i in 0..<pixels { largest = max(largest, den[i]) }
        let eps = max(Float(options.probeRegularization) * largest, .leastNormalMagnitude)
        let p = floats(probe.baseAddress)
        for i in 0..<pixels {
            let inv = 1 / (den[i] + eps)
            p[2 * i] += num[2 * i] * inv
            p[2 * i + 1] += num[2 * i + 1] * inv
        }
        applySupport()
        try shiftProbes()
    }

    /// Adds O_j* (psi_j - O_j P) and |O_j|^2 over the windows of `frames`
    /// (of one class, P its shifted probe), in order, four frames to a pass
    /// over the sums.
    private func accumulateResiduals(_ frames: [Int], probe p: UnsafePointer<Float>, _ num: UnsafeMutablePointer<Float>,
                                     _ den: UnsafeMutablePointer<Float>) {
        let n = frameSize, w = region.width
        let o = UnsafePointer(floats(object.baseAddress))
        var k = 0
        while k + 4 <= frames.count {
            let j = (frames[k], frames[k + 1], frames[k + 2], frames[k + 3])
            let base = (windowStart(j.0), windowStart(j.1), windowStart(j.2), windowStart(j.3))
            let psi = (exitRows(j.0), exitRows(j.1), exitRows(j.2), exitRows(j.3))
            for y in 0..<n {
                let r = 2 * y * w, q = 2 * y * n
                ComplexRows.probeResiduals((o + base.0 + r, o + base.1 + r, o + base.2 + r, o + base.3 + r),
                                           (psi.0 + q, psi.1 + q, psi.2 + q, psi.3 + q), probe: p + q,
                                           numerator: num + q, denominator: den + y * n, count: n)
            }
            k += 4
        }
        while k < frames.count {
            let base = windowStart(frames[k]), psi = exitRows(frames[k])
            for y in 0..<n {
                ComplexRows.probeResiduals(o + base + 2 * y * w, psi + 2 * y * n, probe: p + 2 * y * n,
                                           numerator: num + 2 * y * n, denominator: den + y * n, count: n)
            }
            k += 1
        }
    }

    /// Float offset of frame j's window corner in the region's arrays.
    @inline(__always)
    private func windowStart(_ j: Int) -> Int {
        2 * ((corners[j].y - region.y0) * region.width + (corners[j].x - region.x0))
    }

    @inline(__always)
    private func exitRows(_ j: Int) -> UnsafePointer<Float> {
        UnsafePointer(floats(exitWaves.baseAddress + j * pixels))
    }


    /// out = scale x spectrum x ramps of class c, or out += ... when `adding`;
    /// the ramps conjugated for the inverse shift.
    private func shift(_ spectrum: UnsafeMutablePointer<Complex<Float>>, into out: UnsafeMutablePointer<Complex<Float>>,
                       ramps c: Int, inverse: Bool, adding: Bool, scale: Float = 1) {
        let n = frameSize
        let f = floats(spectrum), o = floats(out)
        let ry = floats(classRamps.baseAddress + 2 * c * n), rx = floats(classRamps.baseAddress + (2 * c + 1) * n)
        let sign: Float = inverse ? -1 : 1
        for y in 0..<n {
            ComplexRows.ramped(f + 2 * y * n, a: (scale * ry[2 * y], scale * sign * ry[2 * y + 1]), rx, sign: sign, into: o + 2 * y * n,
                               adding: adding, count: n)
        }
    }

    /// Remakes the probe's shifted copy for every class.
    private func shiftProbes() throws {
        let m = pixels
        let anyShifted = classShifts.contains { $0 != (0, 0) }
        let (fwd, inv) = try singlePlans()
        // Both free between probe updates.
        let spectrum = classNumerator.baseAddress, scratch = residualSpectrum.baseAddress
        if anyShifted {
            spectrum.update(from: probe.baseAddress, count: m)
            try transform(fwd, spectrum)
        }
        let s = 1 / Float(m)
        for c in classShifts.indices {
            let out = shiftedProbes.baseAddress + c * m
            if classShifts[c] == (0, 0) {
                out.update(from: probe.baseAddress, count: m)
                continue
            }
            // Transformed where it is kept when the plan's alignment allows (an
            // even frame); the inverse's 1/m goes with the ramps.
            let target = m % 2 == 0 ? out : scratch
            shift(spectrum, into: target, ramps: c, inverse: false, adding: false, scale: s)
            try transform(inv, target)
            if target != out { out.update(from: target, count: m) }
        }
    }

    /// One of the probe step's single-frame transforms, in place and
    /// unnormalized; profiled with the transforms, not the probe update.
    private func transform(_ plan: FFTPlan2D, _ buffer: UnsafeMutablePointer<Complex<Float>>) throws {
        guard profiling else { return try plan.execute(buffer, buffer, normalization: .none) }
        var clock = SectionClock(on: true)
        try plan.execute(buffer, buffer, normalization: .none)
        var seconds = 0.0
        clock.lap(&seconds)
        profile.transforms += seconds
        profile.probeUpdate -= seconds
        profile.probeStepTransforms += 1
    }

    /// The single-frame transforms (forward, inverse) of one probe update:
    /// with sub-pixel classes, the residual sums of each shifted class go to
    /// Fourier space and come back together, and the new probe goes there
    /// and comes back once per shifted class. A baseline of the engine's own
    /// transforms counts them.
    public var probeStepTransforms: (forward: Int, inverse: Int) {
        let shifted = classShifts.indices.filter { classShifts[$0] != (0, 0) }
        guard !shifted.isEmpty else { return (0, 0) }
        let summed = shifted.filter { !classMembers[$0].isEmpty }.count
        return (summed + 1, shifted.count + 1)
    }

    @inline(__always)
    private func probe(of j: Int) -> UnsafeMutablePointer<Complex<Float>> {
        shiftedProbes.baseAddress + frameClass[j] * pixels
    }

    private func singlePlans() throws -> (FFTPlan2D, FFTPlan2D) {
        if work.count == pixels { return (forward, inverse) }
        return try shortPlan(1)
    }

    private func applySupport() {
        guard let support else { return }
        let p = floats(probe.baseAddress)
        for i in 0..<pixels { p[2 * i] *= support[i]; p[2 * i + 1] *= support[i] }
    }

    @inline(__always)
    private func floats(_ p: UnsafeMutablePointer<Complex<Float>>) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
    }

    // MARK: State, for checkpoints

    /// This rank's exit waves, its frames in order, frameSize^2 each.
    public var exitWaveValues: UnsafeBufferPointer<Complex<Float>> { UnsafeBufferPointer(exitWaves.buffer) }

    /// Continues from a saved state: the object over this rank's region, the
    /// probe, this rank's exit waves (its frames in order), and the
    /// iterations already done. DM and RAAR go on from (psi, O, P) alone, so
    /// the next iteration is the one an uninterrupted run would make.
    public func restore(object regionValues: [Complex<Float>], probe newProbe: Array2D<Complex<Float>>,
                        exitWaves values: [Complex<Float>], history restored: [IterationStats]) throws {
        guard regionValues.count == region.area else {
            throw SimulationError.invalid("a saved object of \(regionValues.count) pixels for a region of \(region.area)")
        }
        guard newProbe.height == frameSize, newProbe.width == frameSize else {
            throw SimulationError.invalid("a saved probe of \(newProbe.height)x\(newProbe.width) for \(frameSize)x\(frameSize) frames")
        }
        guard values.count == frameCount * pixels else {
            throw SimulationError.invalid("saved exit waves of \(values.count) values for \(frameCount) frames of \(pixels)")
        }
        object.baseAddress.update(from: regionValues, count: region.area)
        probe.baseAddress.update(from: newProbe.values, count: pixels)
        exitWaves.baseAddress.update(from: values, count: values.count)
        history = restored
        iteration = restored.count
        try shiftProbes()
    }

    // MARK: Results

    public var currentProbe: Array2D<Complex<Float>> {
        Array2D(height: frameSize, width: frameSize, values: probe.array)
    }

    /// The object over this rank's region.
    public var regionObject: Array2D<Complex<Float>> {
        Array2D(height: region.height, width: region.width, values: object(in: region))
    }

    /// The object over `box` (inside the region), e.g. the owned tile.
    public func object(in box: Box) -> [Complex<Float>] {
        precondition(region.contains(box), "\(box) is outside the region \(region)")
        var out: [Complex<Float>] = []
        out.reserveCapacity(box.area)
        for y in box.y0..<box.y1 {
            let row = (y - region.y0) * region.width + (box.x0 - region.x0)
            out.append(contentsOf: UnsafeBufferPointer(start: object.baseAddress + row, count: box.width))
        }
        return out
    }

    /// Total |probe|^2 over each region pixel (illumination), as of the last object update.
    public var illumination: [Float] { Array(UnsafeBufferPointer(start: totalDenominator, count: region.area)) }
}

extension FFTPlanning {
    var rigor: FFTPlan2D.Rigor { self == .measure ? .measure : .estimate }
}
