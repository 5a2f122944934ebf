import CXI
import Engines
import Foundation
import Numerics
import Preview
import Recon
import ReconMPI
import SwiftHDF5
import SwiftMPI

/// A reconstruction error a user can act on (bad input, a layout that does not fit).
public struct ReconstructionError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Reads a scan, splits it into tiles over the ranks of `comm`, iterates,
/// and writes the result collectively. Every rank runs the same calls.
public final class ReconstructionJob {
    public struct Options: Sendable {
        public var engine = EngineOptions()
        public var convention = TranslationConvention.cxi
        public var tiles: (rows: Int, columns: Int)? = nil
        /// Use source_1/illumination as the first probe when the file has one.
        public var useFileProbe = true
        /// Defocus in m for the first probe's phase when it comes from the data (0: flat).
        public var probeDefocus = 0.0
        /// Where the first probe comes from when the file offers none (or it is not used).
        public var firstProbe = FirstProbeSource.optics
        /// Compare with the truth every k iterations (0: only at the end).
        public var truthEvery = 10
        /// The memory the solve may take on each rank, in GB (nil: 80% of the host's memory shared by its ranks).
        public var maxMemoryGB: Double? = nil
        public init() {}
    }

    public let comm: Communicator
    public let options: Options
    public let input: String
    public let scan: CXIScan
    public let grid: ObjectGrid
    public let layout: TileLayout
    /// The engine running now (a sequence hands the model from one to the next).
    public private(set) var engine: any ReconstructionEngine
    public let geometry: Geometry
    /// What the first probe was made from, and why the recorded optics were not used when asked for.
    public private(set) var probeOrigin = "the file's illumination"
    public private(set) var probeWarning: String? = nil
    /// NRMSE (global factor removed) per iteration where measured, else NaN.
    public private(set) var truthError: [Double] = []
    private let truth: TruthTile?

    public init(input: String, comm: Communicator, options: Options) throws {
        self.comm = comm
        self.options = options
        self.input = input
        let reader = try CXIReader(path: input, convention: options.convention)
        let s = reader.scan
        scan = s
        guard s.readout == nil else {
            throw ReconstructionError("\(input): holds raw fast-CCD frames; clean them first (ns-mpirun raw2cxi)")
        }
        guard s.frameHeight == s.frameWidth else {
            throw ReconstructionError("\(input): frames are \(s.frameHeight)x\(s.frameWidth); the solver needs square frames")
        }
        let m = s.frameHeight
        geometry = Geometry(energy: s.energy, distance: s.distance, detectorPixelSize: s.xPixelSize, frameSize: m)
        // Before any grid or buffer is sized from the file: positions in the wrong unit, or a scan that cannot fit.
        if let problem = ScanLimits.positionsProblem(s.positions) {
            throw ReconstructionError("\(input): \(reader.translationPath): \(problem)")
        }
        let cost = ScanCost(frames: s.frames, frameSize: m, positions: s.positions, samplePixelSize: geometry.samplePixelSize, ranks: comm.size,
                            engineFrameValues: EngineRegistry.peakFrameValues(options.engine))
        if let problem = cost.sparseProblem { throw ReconstructionError("\(input): \(reader.translationPath): \(problem)") }
        if let problem = cost.problem(budgetBytes: try comm.memoryBudgetBytes(gigabytes: options.maxMemoryGB)) {
            throw ReconstructionError("\(input): \(problem)")
        }
        grid = ObjectGrid(positions: s.positions, pixelSize: geometry.samplePixelSize, frameSize: m)
        let (corners, offsets) = grid.windows(subpixelSteps: options.engine.subpixelSteps)
        do {
            layout = try TileLayout(corners: corners, frameSize: m, objectHeight: grid.height, objectWidth: grid.width,
                                    ranks: comm.size, grid: options.tiles)
        } catch let e as TileLayout.LayoutError {
            throw ReconstructionError("\(input): \(e)")
        }

        // This rank's frames, as amplitudes with the zero frequency at index 0.
        let mine = layout.frames(of: comm.rank)
        var amplitudes = [Float](repeating: 0, count: mine.count * m * m)
        var meanFrame = [Double](repeating: 0, count: m * m)
        var k = 0
        while k < mine.count {
            var run = 1
            while k + run < mine.count && mine[k + run] == mine[k] + run && run < 16 { run += 1 }
            let values = try reader.readFrames(first: mine[k], count: run)
            for r in 0..<run {
                let photons = values[(r * m * m)..<((r + 1) * m * m)]
                for i in 0..<(m * m) { meanFrame[i] += Double(photons[photons.startIndex + i]) }
                amplitudes.replaceSubrange(((k + r) * m * m)..<((k + r + 1) * m * m), with: SolverInput.amplitudes(photons, side: m))
            }
            k += run
        }
        let mask = SolverInput.mask(s.mask, side: m)
        let frames = LocalFrames(indices: mine, corners: mine.map { corners[$0] }, offsets: mine.map { offsets[$0] }, amplitudes: amplitudes,
                                 weights: [Float](repeating: 1, count: mine.count))

        let probe: Array2D<Complex<Float>>
        if options.useFileProbe, let p = s.illumination, p.height == m, p.width == m {
            probe = p
        } else {
            guard let mean = try SolverInput.meanFrame(sums: meanFrame, count: mine.count, side: m, comm: comm) else {
                throw ReconstructionError("\(input): the scan has no frames")
            }
            let first = try FirstProbe.make(source: options.firstProbe, optics: s.optics, meanIntensity: mean, geometry: geometry,
                                            defocus: options.probeDefocus)
            probe = first.probe
            probeOrigin = first.origin
            probeWarning = first.warning
        }
        engine = try SolverInput.engine(comm: comm, layout: layout, frames: frames, mask: mask, probe: probe,
                                        options: options.engine.running(at: 0))

        truth = try TruthTile(reader: reader, height: grid.height, width: grid.width, corners: corners, tile: layout.tiles[comm.rank])
    }

    public var hasTruth: Bool { truth != nil }

    /// The truth comparisons of the iterations a checkpoint holds.
    func restoreTruthError(_ values: [Double]) { truthError = values }

    /// Runs the configured iterations; `progress` sees each one (on every
    /// rank), then `after` (on every rank, so it may be collective).
    public func run(progress: (IterationStats, Double?) -> Void, after: (IterationStats) throws -> Bool = { _ in true }) throws {
        // From the first iteration not yet done (after a resume).
        let total = options.engine.totalIterations
        for i in engine.iteration..<max(engine.iteration, total) {
            try continueEngine(at: i)
            let stats = try engine.iterate()
            var error: Double? = nil
            if hasTruth && ((options.truthEvery > 0 && (i + 1) % options.truthEvery == 0) || i == total - 1) {
                error = try tileNRMSE()
            }
            truthError.append(error ?? .nan)
            progress(stats, error)
            guard try after(stats) else { return }
        }
    }

    /// The engine of the sequence that runs iteration `i`, taking over from the one before.
    func continueEngine(at i: Int) throws {
        let wanted = options.engine.running(at: i)
        if wanted.algorithm != engine.name { engine = try EngineRegistry.continuing(engine, with: wanted) }
    }

    /// Collective: the NRMSE against the truth over the ranks' tiles (NaN without a truth).
    public func tileNRMSE() throws -> Double {
        guard let truth else { return .nan }
        return try truth.nrmse(engine.object(in: layout.tiles[comm.rank]), comm: comm)
    }

    /// The whole object on rank 0 (nil elsewhere), assembled from the
    /// tiles, or every `step`-th pixel of it in each direction.
    public func gatherObject(step: Int = 1) throws -> Array2D<Complex<Float>>? {
        try TileGather.object(engine: engine, layout: layout, comm: comm, step: step)
    }

    /// Largest side of a preview image: a bigger object is subsampled, so
    /// rank 0 never gathers a huge object while the iterations run.
    public static let previewSide = 1024

    /// Reads `output` back after `write`: each rank compares its owned tile,
    /// and rank 0 the probe, bit for bit with what is in memory. Returns the
    /// number of differing values over all ranks (collective), so a parallel
    /// file system that loses or misplaces a hyperslab is caught at once.
    public func verifyOutput(_ output: String) throws -> Int {
        let tile = layout.tiles[comm.rank]
        let file = try HDF5File(path: output, mode: .readOnly)
        let stored = try file.openDataset(CXIPaths.image).read(Complex<Float>.self, offset: [tile.y0, tile.x0],
                                                               count: [tile.height, tile.width])
        var differing = zip(stored, engine.object(in: tile)).filter { $0 != $1 }.count
        if comm.rank == 0 {
            let probe = try file.read(CXIPaths.illumination, as: Complex<Float>.self)
            let modes = engine.model.probeModes.flatMap(\.values)
            differing += zip(probe, modes).filter { $0 != $1 }.count + abs(probe.count - modes.count)
        }
        try file.close()
        return try comm.allreduce(differing, op: .sum)
    }

    /// Gathers the object (collective) and writes the preview images on rank 0.
    public func writePreview(_ writer: PreviewWriter) throws {
        let step = max(1, (max(grid.height, grid.width) + Self.previewSide - 1) / Self.previewSide)
        let object = try gatherObject(step: step)
        guard let object else { return }
        let probe = engine.currentProbe
        let full = ObjectMetrics.illuminated(probe: probe, corners: grid.corners, height: grid.height, width: grid.width)
        let region = (0..<object.height).flatMap { y in (0..<object.width).map { full[y * step * grid.width + $0 * step] } }
        try writer.write(object: object, region: region, probe: probe, fourierErrors: engine.history.map(\.fourierError),
                         truthErrors: truthError)
    }

    /// The final comparison with the truth on rank 0: shift, ramp and factor removed.
    public func finalComparison(object: Array2D<Complex<Float>>) throws -> ObjectMetrics.Comparison? {
        guard comm.rank == 0, hasTruth else { return nil }
        let reader = try CXIReader(path: input, convention: options.convention)
        let truth = try reader.truthObject()
        let region = ObjectMetrics.illuminated(probe: try reader.truthProbe(), corners: grid.corners,
                                               height: grid.height, width: grid.width)
        return try ObjectMetrics.compare(object, truth: truth, region: region)
    }

    public func write(_ output: String, command: String, version: String) throws {
        let result = try SolverInput.result(engine: engine, layout: layout, pixelSize: grid.pixelSize, truthError: truthError,
                                            scan: scan, options: options.engine, command: command, version: version)
        try CollectiveOutput.write(output, comm: comm, inputs: [(role: "the scan", path: input)], size: ReconstructionWriter.size(of: result)) {
            try ReconstructionWriter.write($0, result: result, tile: engine.object(in: layout.tiles[comm.rank]), comm: comm)
        }
    }
}

/// The whole object assembled on rank 0 from every rank's owned tile.
public enum TileGather {
    /// Collective; rank 0 gets the object (every `step`-th pixel in each direction), the others nil.
    public static func object(engine: any ReconstructionEngine, layout: TileLayout, comm: Communicator,
                              step: Int = 1) throws -> Array2D<Complex<Float>>? {
        precondition(step >= 1)
        func kept(_ range: Range<Int>) -> [Int] { range.filter { $0 % step == 0 } }
        let tile = layout.tiles[comm.rank]
        let mine = engine.object(in: tile)
        let sent = step == 1 ? mine : kept(tile.y0..<tile.y1).flatMap { y in
            kept(tile.x0..<tile.x1).map { mine[(y - tile.y0) * tile.width + ($0 - tile.x0)] }
        }
        let (values, counts) = try comm.gatherv(sent, root: 0)
        guard comm.rank == 0 else { return nil }
        var whole = Array2D<Complex<Float>>(height: (layout.objectHeight + step - 1) / step,
                                            width: (layout.objectWidth + step - 1) / step, repeating: .zero)
        var offset = 0
        for (r, t) in layout.tiles.enumerated() {
            var k = offset
            for y in kept(t.y0..<t.y1) {
                for x in kept(t.x0..<t.x1) { whole[y / step, x / step] = values[k]; k += 1 }
            }
            offset += counts[r]
        }
        return whole
    }
}
