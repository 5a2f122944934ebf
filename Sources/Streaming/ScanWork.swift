import CXI
import Engines
import Foundation
import Ingest
import Numerics
import Recon
import ReconMPI
import Reconstruction
import SwiftHDF5
import SwiftMPI

/// A frame dealt to a rank: still raw, as it came off the wire.
struct DealtFrame {
    var header: FrameHeader
    var payload: [UInt8]
    var arrival: Double
    var dark: Bool
    /// One of the first data frames, also used to find the diffraction centre.
    var centring: Bool
}

/// A frame a rank refused after it was dealt: its index is free again on rank 0.
struct RankRejection: Codable {
    var scanID: String
    var index: Int
    var dark: Bool
    var reason: String
}

/// One scan's work on one rank, from `start` to the written file: dark
/// statistics, cleaning, the frames this rank owns, and its tile of the
/// solve. Every method named collective is called by all ranks together.
final class ScanWork {
    let start: ScanStart
    let options: StreamOptions
    /// The scan's file is DIR/BASE.cxi (its raw copy DIR/BASE-raw.cxi), as rank 0 chose.
    var fileBase: String
    /// The memory the solve may take on each rank.
    let budgetBytes: Double
    /// From `start`, or (when it had none) from the frames' own positions once rank 0 has them all.
    private(set) var positions: [(y: Double, x: Double)]
    let rank: Int
    /// Darks to cleaner, for raw frames.
    private let setup: CleanerSetup?
    private(set) var queue: [DealtFrame] = []

    // Known after `prepare`.
    private(set) var cleaner: FrameCleaner?
    private(set) var frameSize = 0
    private(set) var layout: TileLayout?
    private(set) var grid: ObjectGrid?
    private(set) var geometry: Geometry?
    private var mask: [Float] = []
    private var outputMask: [UInt32] = []
    private var centre: (y: Double, x: Double) = (0, 0)
    private var mine: [Int] = []
    private var localIndex: [Int: Int] = [:]
    private var amplitudes: [Float] = []
    private var weights: [Float] = []
    private var meanSum: [Double] = []
    private(set) var engine: (any ReconstructionEngine)?
    /// The engine settings now in force: the session's at `start`, then each
    /// live `set` or change of engine in the final phase, so a solve started
    /// later and the file's record follow them.
    private(set) var engineOptions: EngineOptions
    /// The simulation's truth over this rank's tile (with `--truth`, where the grids match).
    private var truth: TruthTile?
    /// Why the solve is not compared with the truth, said once when the solver starts.
    private(set) var truthNote: String?
    /// The NRMSE against the truth after each iteration it was measured at (1-based).
    private(set) var truthErrors: [Int: Double] = [:]

    // What this rank cleaned, for the scan images (summed over ranks at the end).
    private var transmission: [Double]
    private var comY: [Double]
    private var comX: [Double]
    private var outbox: [Int: [(index: Int, arrival: Double, photons: [Float])]] = [:]
    private(set) var latencies: [Double] = []
    /// Clean frames this rank owns, by local index (only with `saveClean`).
    private var cleanFrames: [Int: [Float]] = [:]
    /// The latest clean frame this rank placed, for viewers.
    private(set) var latestFrame: (index: Int, photons: [Float])?
    /// When this rank placed its last frame (s since 1970).
    private(set) var lastPlaced = 0.0
    private var placedFlags: [Bool] = []

    // Counters of this rank.
    private(set) var darksUsed = 0
    private(set) var cleaned = 0
    private(set) var rejected = 0
    private(set) var placed = 0
    private(set) var rejectionReasons: [String] = []
    /// Rejections not yet reported to rank 0.
    private(set) var newRejections: [RankRejection] = []
    private(set) var warnings: [String] = []
    /// What the first probe was made from, once the solver starts.
    private(set) var probeOrigin = ""
    private(set) var probeWarning: String?

    var isRaw: Bool { start.readout != nil }

    /// The raw scan as it arrives (`saveRaw`), opened by every rank together at `start`.
    private var rawFile: CXIWriter?
    private(set) var rawPath: String?

    /// Collective: opens the raw file when asked for and the frames are raw.
    func openRawFile(_ path: String, comm: Communicator) throws {
        guard options.saveRaw, let readout = start.readout else { return }
        let scan = CXIScan(energy: start.energy, distance: start.distance, xPixelSize: start.xPixelSize, yPixelSize: start.yPixelSize,
                           frameHeight: start.shapeY, frameWidth: start.shapeX,
                           // Positions that come with the frames are written when known (`tile`).
                           positions: positions.isEmpty ? Array(repeating: (0, 0), count: start.frames) : positions,
                           readout: readout, gain: start.gain, darkFrames: start.darks, optics: start.optics)
        rawFile = try CXIWriter(path: path, scan: scan, frameType: .uint16, comm: comm, version: options.version, command: options.command)
        rawPath = path
    }

    /// Collective: closes the raw file (frames that never arrived stay 0) and moves it into place.
    func closeRawFile() throws {
        try rawFile?.close()
        rawFile = nil
    }

    /// Collective: drops the raw file (an aborted scan); nothing is left at its path.
    func discardRawFile() {
        rawFile?.discard()
        rawFile = nil
        rawPath = nil
    }

    private func record(_ f: DealtFrame, _ values: [Float]) {
        guard let rawFile else { return }
        do {
            try rawFile.writeFrame(values.map { UInt16(clamping: Int($0.rounded())) }, index: f.header.index, dark: f.dark)
        } catch {
            // The raw copy is a by-product: the scan goes on without it.
            warnings.append("raw copy of \(f.dark ? "dark" : "frame") \(f.header.index) not written: \(error)")
        }
    }

    init(start: ScanStart, options: StreamOptions, rank: Int, fileBase: String, budgetBytes: Double = .infinity) {
        self.start = start
        self.options = options
        self.rank = rank
        self.fileBase = fileBase
        self.budgetBytes = budgetBytes
        positions = (start.translations ?? []).map { ($0[0], $0[1]) }
        engineOptions = options.engine
        setup = start.readout.map { CleanerSetup(layout: $0, gain: start.gain, fileMask: nil, options: options.preprocess) }
        transmission = [Double](repeating: 0, count: start.frames)
        comY = transmission
        comX = transmission
    }

    /// Makes the cleaner's FFT plans while the darks arrive: FFTW keeps what
    /// it learns (its wisdom) for the process, so `prepare` plans at once.
    func warmUp() {
        guard let layout = start.readout else { return }
        let centre = (Double(layout.rows) / 2, Double(layout.columns) / 2)
        for o in [CentreFinder.options(options.preprocess), options.preprocess] {
            _ = try? FrameCleaner(layout: layout, gain: start.gain, dark: nil, fileMask: nil, centre: centre, options: o)
        }
    }

    /// The most frames (and darks) a scan may announce.
    static let maxFrames = 10_000_000

    /// The longest scan id accepted (file names are made from it).
    static let maxScanIDLength = 128

    /// Checks a `start` before any rank acts on it, against what the session
    /// can afford: nil when usable, else the reason naming the field.
    /// `budgetBytes` bounds the solve on each of `ranks` ranks; a frame may
    /// be no larger than `maxMessageBytes`, the largest message read.
    static func problem(with s: ScanStart, options: StreamOptions, ranks: Int, budgetBytes: Double = .infinity,
                        maxMessageBytes: Int = .max) -> String? {
        guard !s.scanID.isEmpty, s.scanID.count <= maxScanIDLength, !s.scanID.contains(where: { $0.isNewline || $0 == "\0" }) else {
            return "start: 'scan_id' must be 1 to \(maxScanIDLength) characters on one line, got \(s.scanID.count)"
        }
        guard s.frames > 0 else { return "start: 'frames' is \(s.frames); a scan needs at least one frame" }
        // Every rank sizes per-frame arrays from these: a corrupt count must not exhaust memory.
        guard s.frames <= maxFrames else { return "start: 'frames' is \(s.frames); a scan has at most \(maxFrames)" }
        guard s.darks >= 0, s.darks <= maxFrames else { return "start: 'darks' is \(s.darks); it must be in 0...\(maxFrames)" }
        guard (1...ScanLimits.frameSide).contains(s.shapeY), (1...ScanLimits.frameSide).contains(s.shapeX) else {
            return "start: the frame shape \(s.shapeY)x\(s.shapeX) is not usable (each side 1 to \(ScanLimits.frameSide) pixels)"
        }
        guard let bytes = FrameHeader.bytesPerElement[s.dtype] else { return "start: 'dtype' '\(s.dtype)' is not known" }
        guard s.shapeY * s.shapeX * bytes <= maxMessageBytes else {
            return "start: frames of \(s.shapeY)x\(s.shapeX) \(s.dtype) are \(s.shapeY * s.shapeX * bytes) bytes, over the \(maxMessageBytes) bytes a message may have (--max-message-mb)"
        }
        for (name, problem) in [("energy", ScanLimits.energyProblem(s.energy)), ("distance", ScanLimits.distanceProblem(s.distance)),
                                ("x_pixel_size", ScanLimits.pixelSizeProblem(s.xPixelSize)), ("y_pixel_size", ScanLimits.pixelSizeProblem(s.yPixelSize))] {
            if let problem { return "start: '\(name)': \(problem)" }
        }
        if let g = s.gain, !(g.isFinite && g > 0) { return "start: 'gain' is \(g); ADU per photon must be positive" }
        if let problem = s.optics?.recordProblem { return "start: 'optics': \(problem)" }
        let frameSize: Int, crop: Int
        if let r = s.readout {
            if let p = r.problems().first { return "start: 'readout': \(p)" }
            guard r.rows == s.shapeY, r.rawColumns == s.shapeX else {
                return "start: the readout (\(r.rows) rows x \(r.rawColumns) raw columns) does not match the frame shape \(s.shapeY)x\(s.shapeX)"
            }
            crop = options.preprocess.cropSize ?? min(r.rows, r.columns)
            guard crop <= min(r.rows, r.columns) else {
                return "start: the crop \(crop) is larger than the \(r.rows)x\(r.columns) detector"
            }
            frameSize = options.preprocess.outputSize ?? crop
        } else {
            guard s.shapeY == s.shapeX else { return "start: clean frames are \(s.shapeY)x\(s.shapeX); the solver needs square frames" }
            frameSize = s.shapeY
            crop = frameSize
        }
        // The object's pixel: lambda z / (crop x pitch), whatever the downsampling.
        let samplePixel = Geometry(energy: s.energy, distance: s.distance, detectorPixelSize: s.xPixelSize, frameSize: crop).samplePixelSize
        // Without translations every data frame must carry posy and posx (the coordinator checks them, and the cost once all are in).
        guard let t = s.translations else {
            return costProblem(s, positions: [], frameSize: frameSize, samplePixelSize: samplePixel, ranks: ranks,
                               engines: options.engineNames, modes: options.engine.probeModes, budgetBytes: budgetBytes)
        }
        guard t.count == s.frames else { return "start: \(t.count) translations for \(s.frames) frames" }
        if let bad = t.firstIndex(where: { $0.count != 2 }) { return "start: translation \(bad) is not a [y, x] pair" }
        let positions = t.map { (y: $0[0], x: $0[1]) }
        if let problem = ScanLimits.positionsProblem(positions) { return "start: 'translations': \(problem)" }
        return costProblem(s, positions: positions, frameSize: frameSize, samplePixelSize: samplePixel, ranks: ranks,
                               engines: options.engineNames, modes: options.engine.probeModes, budgetBytes: budgetBytes)
    }

    /// What the scan's solve holds on the busiest rank with these engines in turn and probe modes.
    static func cost(_ s: ScanStart, positions: [(y: Double, x: Double)], frameSize: Int, samplePixelSize: Double,
                     ranks: Int, engines: [String], modes: Int) -> ScanCost {
        ScanCost(frames: s.frames, frameSize: frameSize, positions: positions, samplePixelSize: samplePixelSize,
                 ranks: ranks, rawPixels: s.readout?.rawPixels ?? 0,
                 engineFrameValues: EngineRegistry.peakFrameValues(engines) * modes)
    }

    /// The solve's memory on the busiest rank against the budget (positions: the scan's, or none yet).
    static func costProblem(_ s: ScanStart, positions: [(y: Double, x: Double)], frameSize: Int, samplePixelSize: Double,
                            ranks: Int, engines: [String], modes: Int, budgetBytes: Double) -> String? {
        let cost = cost(s, positions: positions, frameSize: frameSize, samplePixelSize: samplePixelSize, ranks: ranks, engines: engines,
                        modes: modes)
        if let sparse = cost.sparseProblem { return "start: 'translations': \(sparse)" }
        return cost.problem(budgetBytes: budgetBytes).map { "start: \($0)" }
    }

    func accept(_ frames: [DealtFrame]) { queue += frames }

    /// A frame refused here; rank 0 frees its index (`frame`) so a valid resend is placed.
    func reject(_ reason: String, frame: DealtFrame? = nil) {
        rejected += 1
        if rejectionReasons.count < 20 { rejectionReasons.append(reason) }
        if let frame {
            newRejections.append(RankRejection(scanID: start.scanID, index: frame.header.index, dark: frame.dark, reason: reason))
        }
    }

    /// The rejections made since the last call.
    func takeNewRejections() -> [RankRejection] {
        defer { newRejections.removeAll() }
        return newRejections
    }

    private func pixels(_ f: DealtFrame) -> [Float]? {
        do {
            return try f.payload.withUnsafeBytes { try f.header.pixels(from: $0) }
        } catch {
            reject("\(f.dark ? "dark" : "frame") \(f.header.index): \(error)", frame: f)
            return nil
        }
    }

    // MARK: Before the first clean frame

    /// Collective: merges the darks, finds the centre from the centring
    /// frames, makes the cleaner and the tile layout. Returns a problem,
    /// the same on every rank, when the scan cannot be solved.
    func prepare(comm: Communicator) throws -> String? {
        let began = Date()
        // Darks dealt before `prepare` are all in the queue: use them now.
        var rest: [DealtFrame] = []
        for f in queue {
            guard f.dark else { rest.append(f); continue }
            if let values = pixels(f) {
                try setup?.addDark(values)
                darksUsed += 1
                record(f, values)
            }
        }
        queue = rest
        if let setup {
            try setup.mergeDarks(over: comm)
            steps["darks merged"] = Date().timeIntervalSince(began)
            for f in queue where f.centring {
                guard let raw = try? f.payload.withUnsafeBytes({ try f.header.pixels(from: $0) }) else { continue }
                try? setup.addCentring(raw: raw)
            }
            guard let found = try setup.centre(over: comm) else {
                return "the first frames hold no photons after cleaning: give --centre y,x"
            }
            centre = found
            steps["centre found"] = Date().timeIntervalSince(began)
            let c: FrameCleaner
            do {
                c = try setup.cleaner(centre: centre)
            } catch {
                return "cannot clean these frames: \(error)"
            }
            cleaner = c
            steps["cleaner made"] = Date().timeIntervalSince(began)
            frameSize = c.outputSize
            outputMask = c.outputMask
            geometry = Geometry(energy: start.energy, distance: start.distance,
                                detectorPixelSize: c.outputPixelSize(start.xPixelSize), frameSize: frameSize)
        } else {
            frameSize = start.shapeY
            centre = (Double(frameSize) / 2, Double(frameSize) / 2)
            outputMask = [UInt32](repeating: 0, count: frameSize * frameSize)
            geometry = Geometry(energy: start.energy, distance: start.distance, detectorPixelSize: start.xPixelSize,
                                frameSize: frameSize)
        }
        mask = SolverInput.mask(outputMask, side: frameSize)
        preparedAt = Date().timeIntervalSince1970
        return positions.isEmpty ? nil : try tile(positions: nil, comm: comm)
    }

    /// Collective: the object grid and the tiles, from `start`'s translations
    /// or from the positions rank 0 gathered from the frames; clean frames
    /// held until now go to their owners at the next routing.
    func tile(positions given: [[Double]]?, comm: Communicator) throws -> String? {
        let m = frameSize
        if let given {
            // The frames' own positions: checked as `start`'s are, before a grid is sized from them.
            let p = given.map { (y: $0[0], x: $0[1]) }
            if let problem = ScanLimits.positionsProblem(p) { return "the frames' positions: \(problem)" }
            let cost = Self.cost(start, positions: p, frameSize: m, samplePixelSize: geometry!.samplePixelSize, ranks: comm.size,
                                 engines: options.engineNames, modes: options.engine.probeModes)
            if let problem = cost.problem(budgetBytes: budgetBytes) { return problem }
            positions = p
            try rawFile?.rewriteTranslations(positions)
        }
        let g = ObjectGrid(positions: positions, pixelSize: geometry!.samplePixelSize, frameSize: m)
        grid = g
        let l: TileLayout
        do {
            l = try TileLayout(corners: g.windows(subpixelSteps: options.engine.subpixelSteps).corners, frameSize: m,
                               objectHeight: g.height, objectWidth: g.width,
                               ranks: comm.size, grid: options.tiles)
        } catch {
            return "the scan cannot be tiled over \(comm.size) ranks: \(error)"
        }
        layout = l
        mine = l.frames(of: rank)
        localIndex = Dictionary(uniqueKeysWithValues: mine.enumerated().map { ($1, $0) })
        amplitudes = [Float](repeating: 0, count: mine.count * m * m)
        weights = [Float](repeating: 0, count: mine.count)
        placedFlags = [Bool](repeating: false, count: mine.count)
        meanSum = [Double](repeating: 0, count: m * m)
        for f in held { outbox[l.owner[f.index], default: []].append(f) }
        held.removeAll()
        return nil
    }

    /// Frames dealt here and not yet cleaned.
    var unprocessed: Int { queue.count }

    /// The cleaner is ready (darks merged, centre found).
    var cleanerReady: Bool { frameSize > 0 }
    /// The tiles are known: clean frames can go to their owners.
    var prepared: Bool { layout != nil }
    /// Clean frames waiting for the tiles (positions that come with the frames).
    private var held: [(index: Int, arrival: Double, photons: [Float])] = []
    /// When `prepare` finished (s since 1970), and its steps' end times from its start.
    private(set) var preparedAt = 0.0
    private(set) var steps: [String: Double] = [:]

    // MARK: Each round

    /// Cleans up to `budget` queued frames; each goes to its owner's outbox.
    func cleanQueued(budget: Int) {
        guard cleanerReady else {
            // Before `prepare`: the darks only, as they come.
            var rest: [DealtFrame] = []
            for f in queue {
                if f.dark, let values = pixels(f) {
                    try? setup?.addDark(values)
                    darksUsed += 1
                    record(f, values)
                } else if !f.dark {
                    rest.append(f)
                }
            }
            queue = rest
            return
        }
        var n = 0
        while n < budget, !queue.isEmpty {
            let f = queue.removeFirst()
            n += 1
            guard let raw = pixels(f) else { continue }
            if f.dark {
                // A dark after the statistics were made cannot change them.
                reject("dark \(f.header.index): arrived after the dark statistics were made")
                continue
            }
            record(f, raw)
            let photons: [Float]
            let total: Double
            let com: (y: Double, x: Double)
            if let cleaner {
                guard let frame = try? cleaner.clean(raw: raw) else {
                    reject("frame \(f.header.index): cannot be cleaned", frame: f)
                    continue
                }
                photons = frame.photons
                total = frame.total
                com = frame.centreOfMass
            } else {
                photons = raw.map { max(0, $0) }
                (total, com) = Self.moments(photons, side: frameSize)
            }
            let i = f.header.index
            transmission[i] = total
            comY[i] = com.y
            comX[i] = com.x
            cleaned += 1
            if let layout {
                outbox[layout.owner[i], default: []].append((i, f.arrival, photons))
            } else {
                held.append((i, f.arrival, photons))
            }
        }
    }

    static func moments(_ image: [Float], side: Int) -> (Double, (y: Double, x: Double)) {
        var total = 0.0, sy = 0.0, sx = 0.0
        for y in 0..<side {
            for x in 0..<side {
                let v = Double(image[y * side + x])
                total += v
                sy += v * Double(y)
                sx += v * Double(x)
            }
        }
        let half = Double(side) / 2
        if total > 0 { return (total, (y: sy / total, x: sx / total)) }
        return (0, (y: half, x: half))
    }

    /// Collective: every clean frame to the rank that owns it, then placed.
    func route(comm: Communicator) throws {
        let size = comm.size, pixels = frameSize * frameSize
        var counts = [Int](repeating: 0, count: size * size)
        for (dest, list) in outbox { counts[rank * size + dest] = list.count }
        try counts.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: .sum) }
        guard counts.contains(where: { $0 > 0 }) else { return }
        var receiveMeta: [(Int, UnsafeMutableBufferPointer<Double>, UnsafeMutableBufferPointer<Float>)] = []
        var requests: [Request] = []
        defer {
            for (_, m, p) in receiveMeta { m.deallocate(); p.deallocate() }
        }
        for source in 0..<size where source != rank {
            let n = counts[source * size + rank]
            guard n > 0 else { continue }
            let meta = UnsafeMutableBufferPointer<Double>.allocate(capacity: 2 * n)
            let photons = UnsafeMutableBufferPointer<Float>.allocate(capacity: n * pixels)
            receiveMeta.append((source, meta, photons))
            requests.append(try comm.irecv(into: meta, from: source, tag: 21))
            requests.append(try comm.irecv(into: photons, from: source, tag: 22))
        }
        var sendBuffers: [([Double], [Float])] = []
        for dest in 0..<size where dest != rank {
            guard let list = outbox[dest], !list.isEmpty else { continue }
            sendBuffers.append((list.flatMap { [Double($0.index), $0.arrival] }, list.flatMap(\.photons)))
        }
        // The arrays stay alive (and unmoved) in sendBuffers until the sends complete.
        var k = 0
        for dest in 0..<size where dest != rank {
            guard let list = outbox[dest], !list.isEmpty else { continue }
            let (meta, photons) = sendBuffers[k]
            k += 1
            requests.append(try meta.withUnsafeBufferPointer { try comm.isend($0, to: dest, tag: 21) })
            requests.append(try photons.withUnsafeBufferPointer { try comm.isend($0, to: dest, tag: 22) })
        }
        for f in outbox[rank] ?? [] { place(f.index, arrival: f.arrival, photons: f.photons[...]) }
        outbox.removeAll(keepingCapacity: true)
        try Request.waitAll(requests)
        withExtendedLifetime(sendBuffers) {}
        for (_, meta, photons) in receiveMeta {
            for j in 0..<(meta.count / 2) {
                let values = Array(photons[(j * pixels)..<((j + 1) * pixels)])
                place(Int(meta[2 * j]), arrival: meta[2 * j + 1], photons: values[...])
            }
        }
    }

    private func place(_ index: Int, arrival: Double, photons: ArraySlice<Float>) {
        guard let j = localIndex[index] else { return }
        // Rank 0 deals each index once; a second copy would be a bug, not a wire fault.
        guard !placedFlags[j] else { return }
        let m = frameSize, n = m * m
        for i in 0..<n { meanSum[i] += Double(photons[photons.startIndex + i]) }
        let amplitude = SolverInput.amplitudes(photons, side: m)
        if let engine {
            amplitude.withUnsafeBufferPointer { engine.place(j, amplitudes: $0) }
        } else {
            amplitudes.replaceSubrange((j * n)..<((j + 1) * n), with: amplitude)
            weights[j] = 1
        }
        placedFlags[j] = true
        placed += 1
        if options.saveClean { cleanFrames[j] = Array(photons) }
        latestFrame = (index, Array(photons))
        lastPlaced = Date().timeIntervalSince1970
        latencies.append(lastPlaced - arrival)
    }

    // MARK: The solve

    /// Collective: the first probe (from the start's optics, or the mean of
    /// the frames placed so far over all ranks), and the engine with
    /// unmeasured frames at weight 0.
    func startSolver(comm: Communicator) throws -> String? {
        guard let layout, let geometry, let grid, engine == nil else { return nil }
        let m = frameSize
        guard let mean = try SolverInput.meanFrame(sums: meanSum, count: placed, side: m, comm: comm) else {
            return "no frames were measured"
        }
        let probe: Array2D<Complex<Float>>
        do {
            let first = try FirstProbe.make(source: options.firstProbe, optics: start.optics, meanIntensity: mean, geometry: geometry,
                                            defocus: options.probeDefocus)
            probe = first.probe
            probeOrigin = first.origin
            probeWarning = first.warning
        } catch {
            return "no first probe from the measured frames: \(error)"
        }
        let (corners, offsets) = grid.windows(subpixelSteps: options.engine.subpixelSteps)
        let frames = LocalFrames(indices: mine, corners: mine.map { corners[$0] }, offsets: mine.map { offsets[$0] },
                                 amplitudes: amplitudes, weights: weights)
        engine = try SolverInput.engine(comm: comm, layout: layout, frames: frames, mask: mask, probe: probe, options: engineOptions)
        amplitudes = []
        if let path = options.truth { try loadTruth(path, corners: corners, comm: comm) }
        return nil
    }

    /// Why this scan's solve would not fit in the budget if `next` took
    /// over from the engine now running (both held at the handover), or nil.
    /// Before the frames' geometry is known, `start` checked what will run.
    func handoverProblem(to next: StreamOptions, ranks: Int) -> String? {
        guard let geometry else { return nil }
        let names = [engine?.name ?? engineOptions.algorithm] + next.engineNames
        let cost = Self.cost(start, positions: positions, frameSize: frameSize, samplePixelSize: geometry.samplePixelSize, ranks: ranks,
                             engines: names, modes: options.engine.probeModes)
        return cost.problem(budgetBytes: budgetBytes)
    }

    /// New engine settings from the next iteration on; another engine
    /// takes over the running one's object, probe and iterations.
    func continueEngine(with options: EngineOptions) throws {
        engineOptions = options
        guard let running = engine else { return }
        engine = try EngineRegistry.continuing(running, with: options)
    }

    /// Collective: the truth tile on every rank, or on none (a rank that cannot read it
    /// stops the comparison everywhere, so the ranks' collectives stay in step).
    private func loadTruth(_ path: String, corners: [(y: Int, x: Int)], comm: Communicator) throws {
        guard let layout, let grid else { return }
        var problem: String? = nil
        do {
            truth = try TruthTile(reader: try CXIReader(path: path), height: grid.height, width: grid.width, corners: corners,
                                  tile: layout.tiles[rank])
            if truth == nil { problem = "\(path) holds no truth object on this scan's \(grid.height) x \(grid.width) grid" }
        } catch {
            problem = "\(error)"
        }
        if try comm.allreduce(truth == nil ? 0 : 1, op: .min) == 0 {
            truth = nil
            truthNote = "not compared with the truth: " + (problem ?? "another rank could not read \(path)")
        }
    }

    /// Collective: the NRMSE against the truth at the current iteration (measured once), or nil without a truth.
    func measureTruth(comm: Communicator) throws -> Double? {
        guard let truth, let engine, let layout else { return nil }
        if let known = truthErrors[engine.iteration] { return known }
        let value = try truth.nrmse(engine.object(in: layout.tiles[rank]), comm: comm)
        truthErrors[engine.iteration] = value
        return value
    }

    /// Collective: each rank writes the frames it owns into the scan's file
    /// (independent writes: owners hold scattered indices); frames that
    /// never arrived stay 0 and are listed in `ns_missing_frames`.
    private func writeCleanFrames(_ path: String, comm: Communicator) throws {
        let m = frameSize
        let file = try HDF5File(path: path, mode: .readWrite, comm: comm)
        let data = try file.createDataset(CXIPaths.data, of: Float.self, shape: [start.frames, m, m], chunks: [1, m, m])
        for (j, frame) in cleanFrames.sorted(by: { $0.key < $1.key }) {
            try data.write(frame, offset: [mine[j], 0, 0], count: [1, m, m], collective: false)
        }
        try file.write(outputMask, to: CXIPaths.mask, shape: [m, m])
        var arrived = [Int32](repeating: 0, count: start.frames)
        for (j, i) in mine.enumerated() where placedFlags[j] { arrived[i] = 1 }
        try arrived.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: .sum) }
        let missing = arrived.indices.filter { arrived[$0] == 0 }.map { Int64($0) }
        try file.write(missing, to: "/entry_1/image_1/process_1/ns_missing_frames", shape: [missing.count])
        try file.close()
    }

    /// Collective: the transmission (STXM) image from every rank's cleaned frames, on rank 0.
    func scanImage(comm: Communicator) throws -> ScanImages? {
        var (t, y, x) = (transmission, comY, comX)
        try t.withUnsafeMutableBufferPointer { try comm.sum($0) }
        try y.withUnsafeMutableBufferPointer { try comm.sum($0) }
        try x.withUnsafeMutableBufferPointer { try comm.sum($0) }
        guard rank == 0 else { return nil }
        // Shifts from the mean centre of mass of the frames so far (the live view shows relative
        // deflection); a frame not cleaned yet has no centre of mass and shows no shift.
        let seen = t.indices.filter { t[$0] > 0 }
        let mean = seen.isEmpty ? centre
            : (y: seen.reduce(0) { $0 + y[$1] } / Double(seen.count), x: seen.reduce(0) { $0 + x[$1] } / Double(seen.count))
        let com = t.indices.map { t[$0] > 0 ? (y: y[$0], x: x[$0]) : mean }
        return ScanImages(positions: positions, transmission: t, centreOfMass: com, centre: mean)
    }

    /// The detector pixels the solver uses (1) and those masked (0), row-major.
    var validPixels: [UInt8] { outputMask.map { $0 == 0 ? 1 : 0 } }

    /// About the bytes `write` puts in the scan's file.
    var fileSize: Double {
        guard let layout else { return 0 }
        let m2 = Double(frameSize * frameSize)
        return Double(layout.objectHeight * layout.objectWidth) * 8 + m2 * 12 + Double(start.frames) * 96
            + (options.saveClean ? Double(start.frames) * m2 * 4 : 0)
    }

    /// Collective: the scan images over all ranks, and the file.
    func write(to path: String, comm: Communicator, report: [String: Any]) throws {
        guard let engine, let layout, let grid else { return }
        // Reduced into copies: the per-rank sums stay as they are for the final `rec` (scanImage reduces again).
        var (transmission, comY, comX) = (self.transmission, self.comY, self.comX)
        try transmission.withUnsafeMutableBufferPointer { try comm.sum($0) }
        try comY.withUnsafeMutableBufferPointer { try comm.sum($0) }
        try comX.withUnsafeMutableBufferPointer { try comm.sum($0) }
        let scan = CXIScan(energy: start.energy, distance: start.distance, xPixelSize: geometry!.detectorPixelSize,
                           yPixelSize: geometry!.detectorPixelSize, frameHeight: frameSize, frameWidth: frameSize,
                           positions: positions, mask: outputMask, optics: start.optics)
        let result = try SolverInput.result(engine: engine, layout: layout, pixelSize: grid.pixelSize,
                                            truthError: engine.history.indices.map { truthErrors[$0 + 1] ?? .nan }, scan: scan,
                                            options: engineOptions, command: options.command, version: options.version)
        try ReconstructionWriter.write(path, result: result, tile: engine.object(in: layout.tiles[rank]), comm: comm)
        if options.saveClean { try writeCleanFrames(path, comm: comm) }
        guard rank == 0 else { return }
        // Serial additions after the collective file is closed.
        let file = try HDF5File(path: path, mode: .readWrite)
        let images = ScanImages(positions: positions, transmission: transmission,
                                centreOfMass: zip(comY, comX).map { ($0, $1) }, centre: centre)
        try CXIWriter.writeScanImages(images, into: file)
        let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
        try file.write(string: String(decoding: json, as: UTF8.self), to: "/entry_1/image_1/process_1/ns_stream_report")
        try file.close()
    }
}
