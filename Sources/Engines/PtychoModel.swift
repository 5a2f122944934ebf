import Foundation
import Numerics
import Recon
import SwiftFFTW

/// What every engine works on, apart from how it iterates: this rank's
/// frames (measured amplitudes, mask, window corners, sub-pixel classes),
/// the order passes visit them, the object over this rank's region and the
/// probe, the overlap sums shared with the ranks whose regions meet this
/// one, and the iterations done so far (kept here, so that an engine
/// following another goes on counting).
///
/// Every pass visits frames along a Hilbert curve through their windows
/// rather than in scan order (a spiral's scan order jumps across the
/// object), so each frame's object rows are mostly still in cache from the
/// frame before; the probe pass does the same within each class. Frames
/// whose windows meet another rank's region go first (`firstInnerRank`), so
/// the sums shared with that rank can be sent while the remaining frames
/// are updated.
///
/// The probe is `modes` mutually incoherent modes (`ProbeModes`), stored
/// one after another; with one mode it is the coherent probe.
public final class PtychoModel {
    public let layout: TileLayout
    public let frameSize: Int
    public let region: Box
    /// The settings every engine shares (sub-pixel steps, probe support, planning).
    public let options: EngineOptions
    public internal(set) var iteration = 0
    public internal(set) var history: [IterationStats] = []
    /// Times the sections of each iteration into `profile` (a clock read per batch and section).
    public var profiling = false
    public var profile = IterationProfile()

    let comm: Collective
    let pixels: Int
    /// Probe modes.
    public let modes: Int
    let frameCount: Int
    /// Global indices of this rank's frames.
    let indices: [Int]
    /// Window corners of this rank's frames.
    let corners: [(y: Int, x: Int)]
    let mask: UnsafeMutablePointer<Float>
    /// sqrt(measured intensity) per frame, zero frequency at index 0.
    let amplitudes: UnsafeMutablePointer<Float>
    /// Per frame: the measured photons on valid pixels.
    let totals: UnsafeMutablePointer<Float>
    let object: ComplexBuffer
    /// The modes, `pixels` values each.
    let probe: ComplexBuffer
    let classes: SubpixelClasses
    let sums: OverlapSums
    /// Room for every mode's values once, for mixing them.
    let modeScratch: ComplexBuffer
    /// Measured frames, in visiting order, and the same per sub-pixel class.
    private(set) var active: [Int]
    private(set) var classMembers: [[Int]] = []
    /// Counts changes to `active`, for engines that keep lists derived from it.
    private(set) var activeChanges = 0
    /// Each frame's place in the order the passes visit frames (`LocalFrames.visitOrder`).
    let visitRank: [Int]
    /// Frames meeting a peer's region have a visit rank below this.
    let firstInnerRank: Int
    private let support: UnsafeMutablePointer<Float>?
    /// Single-frame transforms (the probe's shifted copies, a probe step's sums).
    let single: (forward: FFTPlan2D, inverse: FFTPlan2D)

    public init(comm: Collective, layout: TileLayout, frames: LocalFrames, mask: [Float],
                probe initialProbe: Array2D<Complex<Float>>, options: EngineOptions) throws {
        let problems = options.problems()
        guard problems.isEmpty else { throw SimulationError.invalid(problems.joined(separator: "; ")) }
        let m = layout.frameSize
        guard initialProbe.height == m, initialProbe.width == m else {
            throw SimulationError.invalid("the initial probe is \(initialProbe.height)x\(initialProbe.width), the frames \(m)x\(m)")
        }
        modes = options.probeModes
        guard mask.count == m * m, frames.amplitudes.count == frames.count * m * m, frames.weights.count == frames.count else {
            throw SimulationError.invalid("frames, mask and weights do not match the \(m)x\(m) frame size")
        }
        guard frames.offsets.count == frames.count,
              frames.offsets.allSatisfy({ abs($0.y) <= 1 && abs($0.x) <= 1 }) else {
            throw SimulationError.invalid("frame offsets must be one per frame and within a pixel of the window corner")
        }
        self.comm = comm
        self.layout = layout
        self.options = options
        indices = frames.indices
        corners = frames.corners
        frameCount = frames.count
        frameSize = m
        pixels = m * m
        region = layout.regions[comm.rank]
        self.mask = .allocate(capacity: pixels)
        self.mask.initialize(from: mask, count: pixels)
        object = ComplexBuffer(count: region.area, fill: Complex(1, 0))
        probe = ComplexBuffer(ProbeModes.initial(from: initialProbe.values, size: m, count: options.probeModes))
        classes = SubpixelClasses(offsets: frames.offsets, steps: options.subpixelSteps, frameSize: m, modes: options.probeModes)
        modeScratch = ComplexBuffer(count: modes > 1 ? modes * max(pixels, ProbeModes.mixBlock) : 0)
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
        let rigor = options.fftPlanning.rigor
        single = (try FFTPlan2D(height: m, width: m, batch: 1, direction: .forward, inPlace: true, rigor: rigor),
                  try FFTPlan2D(height: m, width: m, batch: 1, direction: .inverse, inPlace: true, rigor: rigor))
        amplitudes = .allocate(capacity: max(1, frames.amplitudes.count))
        HugePages.advise(amplitudes, bytes: frames.amplitudes.count * MemoryLayout<Float>.stride)
        amplitudes.initialize(from: frames.amplitudes, count: frames.amplitudes.count)
        totals = .allocate(capacity: max(1, frames.count))
        for j in 0..<frames.count { totals[j] = Self.photons(amplitudes + j * pixels, mask: self.mask, pixels: pixels) }
        sums = try OverlapSums(comm: comm, layout: layout)
        let (order, meetingPeers) = frames.visitOrder(cell: max(1, m / 8), size: m, shared: layout.overlaps(of: comm.rank).map(\.box))
        var rank = [Int](repeating: 0, count: frames.count)
        for (r, j) in order.enumerated() { rank[j] = r }
        visitRank = rank
        firstInnerRank = meetingPeers
        active = order.filter { frames.weights[$0] > 0 }
        classMembers = classes.shifts.map { _ in [] }
        for j in active { classMembers[classes.frameClass[j]].append(j) }
        applySupport()
        try shiftProbes()
    }

    deinit {
        amplitudes.deallocate()
        totals.deallocate()
        mask.deallocate()
        support?.deallocate()
    }

    // MARK: Frames

    /// Frames taking part in the iterations.
    public var activeFrames: Int { active.count }

    /// Marks frames measured (1) or not yet (0), e.g. while a scan streams in.
    public func setWeights(_ weights: [Float]) {
        precondition(weights.count == frameCount)
        active = weights.indices.filter { weights[$0] > 0 }.sorted { visitRank[$0] < visitRank[$1] }
        classMembers = classes.shifts.map { _ in [] }
        for j in active { classMembers[classes.frameClass[j]].append(j) }
        activeChanges += 1
    }

    /// A frame measured while an engine runs: its amplitudes replace the
    /// zeros it was made with and it takes part from the next iteration on.
    /// Engines place frames through `ReconstructionEngine.place`, which also
    /// starts their own state for the frame.
    func place(_ j: Int, amplitudes values: UnsafeBufferPointer<Float>) {
        precondition(j >= 0 && j < frameCount && values.count == pixels)
        (amplitudes + j * pixels).update(from: values.baseAddress!, count: pixels)
        totals[j] = Self.photons(amplitudes + j * pixels, mask: mask, pixels: pixels)
        if insertInVisitOrder(j, into: &active) {
            _ = insertInVisitOrder(j, into: &classMembers[classes.frameClass[j]])
            activeChanges += 1
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

    /// How many of `active` meet a peer's region (they come first).
    var meetingPeers: Int {
        var low = 0, high = active.count
        while low < high {
            let mid = (low + high) / 2
            if visitRank[active[mid]] < firstInnerRank { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// A frame's measured photons on valid pixels.
    private static func photons(_ a: UnsafePointer<Float>, mask: UnsafePointer<Float>, pixels: Int) -> Float {
        var total = 0.0
        for i in 0..<pixels where mask[i] > 0 {
            let v = Double(a[i])
            total += v * v
        }
        return Float(total)
    }

    @inline(__always)
    func amplitude(of j: Int) -> UnsafePointer<Float> { UnsafePointer(amplitudes + j * pixels) }

    /// Float offset of frame j's window corner in the region's arrays.
    @inline(__always)
    func windowStart(_ j: Int) -> Int {
        2 * ((corners[j].y - region.y0) * region.width + (corners[j].x - region.x0))
    }

    /// S(P_k) x O over frame j's window: the exit wave of mode k as the model makes it.
    @inline(__always)
    func formExit(_ j: Int, mode k: Int = 0, into out: UnsafeMutablePointer<Complex<Float>>) {
        let n = frameSize, w = region.width
        let o = floats(object.baseAddress) + windowStart(j), p = floats(probe(of: j, mode: k)), d = floats(out)
        for y in 0..<n {
            let k = 2 * y * n
            ComplexRows.product(o + 2 * y * w, p + k, into: d + k, count: n)
        }
    }

    // MARK: Probe

    /// Probe mode k as frame j's model sees it (shifted for its class).
    @inline(__always)
    func probe(of j: Int, mode k: Int = 0) -> UnsafeMutablePointer<Complex<Float>> { classes.probe(of: j, mode: k) }

    /// Mode k of the probe itself.
    @inline(__always)
    func mode(_ k: Int) -> UnsafeMutablePointer<Complex<Float>> { probe.baseAddress + k * pixels }

    /// Keeps the probe inside its support and remakes its shifted copies:
    /// after every change to the probe.
    func probeChanged() throws {
        applySupport()
        try shiftProbes()
    }

    private func shiftProbes() throws {
        try classes.remake(from: probe.baseAddress, modes: modes, plans: single, transform: transform)
    }

    private func applySupport() {
        for k in 0..<modes { applySupport(to: mode(k)) }
    }

    /// Zeroes a probe-shaped array outside the probe's support.
    func applySupport(to values: UnsafeMutablePointer<Complex<Float>>) {
        guard let support else { return }
        let p = floats(values)
        for i in 0..<pixels { p[2 * i] *= support[i]; p[2 * i + 1] *= support[i] }
    }

    /// Each class's copy of a probe-shaped `values` (e.g. a search direction), into `copies`.
    func shiftedCopies(of values: UnsafeMutablePointer<Complex<Float>>, into copies: ComplexBuffer) throws {
        try classes.remake(from: values, modes: 1, into: copies, plans: single, transform: transform)
    }

    /// One of the probe step's single-frame transforms, in place and
    /// unnormalized; profiled with the transforms, not the probe update.
    func transform(_ plan: FFTPlan2D, _ buffer: UnsafeMutablePointer<Complex<Float>>) throws {
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
        let shifted = classes.shifts.indices.filter { classes.isShifted($0) }
        guard !shifted.isEmpty else { return (0, 0) }
        let summed = shifted.filter { !classMembers[$0].isEmpty }.count
        return (modes * (summed + 1), modes * (shifted.count + 1))
    }

    // MARK: Iterations

    /// Records an iteration an engine has finished.
    func record(fourierError: Double, since start: Date) -> IterationStats {
        let stats = IterationStats(iteration: iteration, fourierError: fourierError, seconds: Date().timeIntervalSince(start))
        history.append(stats)
        iteration += 1
        return stats
    }

    // MARK: State, for checkpoints

    /// Continues from a saved object over this rank's region, probe modes
    /// (modes x pixels values), and the iterations already done.
    public func restore(object regionValues: [Complex<Float>], probe newProbe: [Complex<Float>],
                        history restored: [IterationStats]) throws {
        guard regionValues.count == region.area else {
            throw SimulationError.invalid("a saved object of \(regionValues.count) pixels for a region of \(region.area)")
        }
        guard newProbe.count == modes * pixels else {
            throw SimulationError.invalid("a saved probe of \(newProbe.count) values for \(modes) mode(s) of \(frameSize)x\(frameSize)")
        }
        object.baseAddress.update(from: regionValues, count: region.area)
        probe.baseAddress.update(from: newProbe, count: modes * pixels)
        history = restored
        iteration = restored.count
        try shiftProbes()
    }

    // MARK: Results

    /// The first (strongest) probe mode.
    public var currentProbe: Array2D<Complex<Float>> { probeModes[0] }

    /// Every probe mode, strongest first.
    public var probeModes: [Array2D<Complex<Float>>] {
        (0..<modes).map { Array2D(height: frameSize, width: frameSize, values: Array(UnsafeBufferPointer(start: mode($0), count: pixels))) }
    }

    /// Makes the modes orthogonal and sorts them by power (`ProbeModes`);
    /// puts the mix applied (column-major K x K) in `v`, so that an engine can
    /// mix what it keeps per mode alike. The probe's copies are not remade.
    func orthogonalizeModes(mix v: UnsafeMutablePointer<Complex<Float>>) {
        let mix = ProbeModes.orthogonalizingMix(probe.baseAddress, count: modes, pixels: pixels)
        for (i, w) in mix.enumerated() { v[i] = Complex(Float(w.real), Float(w.imaginary)) }
        ProbeModes.mix(probe.baseAddress, count: modes, length: pixels, stride: pixels, by: v, scratch: modeScratch.baseAddress)
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
    public var illumination: [Float] { Array(UnsafeBufferPointer(start: sums.totalDenominator, count: region.area)) }
}

extension FFTPlanning {
    var rigor: FFTPlan2D.Rigor { self == .measure ? .measure : .estimate }
}
