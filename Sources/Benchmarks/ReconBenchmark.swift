import Engines
import Foundation
import Numerics
import Recon
import ReconMPI
import Simulator
import SwiftFFTW
import SwiftMPI

/// Engine iterations on simulated scans, timed beside the pure FFT time of
/// DM's transforms (same plans, same batch, same frames per rank, and the
/// probe step's single-frame transforms) measured in the same run, with the
/// engine's memory beside the data it holds; several engines on one case
/// step in turns, so each is also timed against DM in the same run.
public enum ReconBenchmark {
    public struct Case: Codable, Sendable {
        public var frames: Int
        public var frameSize: Int
        public init(frames: Int, frameSize: Int) {
            self.frames = frames
            self.frameSize = frameSize
        }

        /// The benchmark's scan: a jitter-free spiral at a 300 nm step, the
        /// detector pitch scaled so the sample pixel stays that of 128x128.
        var simulationConfig: SimulationConfig {
            var config = SimulationConfig.standard
            config.geometry.frameSize = frameSize
            config.geometry.detectorPixelSize = 60e-6 * 128 / Double(frameSize)
            config.scan = Scan(pattern: .spiral(points: frames), step: 300e-9, jitter: 0, seed: 1)
            return config
        }
    }

    public struct Row: Codable, Sendable {
        /// The engine, by its registry name; an rPIE iteration is an epoch.
        public var engine: String
        /// Probe modes (the FFT baseline transforms as many exit waves per frame).
        public var probeModes: Int
        public var frames: Int
        public var frameSize: Int
        public var ranks: Int
        public var iterations: Int
        public var secondsPerIteration: Double
        /// Wall time per frame and iteration, and the same in core time (x ranks).
        public var microsecondsPerFrameIteration: Double
        public var coreMicrosecondsPerFrameIteration: Double
        public var fftSecondsPerIteration: Double
        public var ratioToFFT: Double
        /// Seconds per iteration over one-mode DM's on the same case in the same run (when it ran).
        public var ratioToDM: Double?
        /// Resident memory the engine added on the busiest rank, and the bytes
        /// of its frames, exit waves, object region and probe.
        public var engineMegabytes: Double
        public var dataMegabytes: Double
        public var memoryRatio: Double
        public var peakResidentMegabytes: Double
        /// On more than one rank: the same case on each of `ranksTimedAlone`
        /// ranks alone in turns, in the same run (the mean, fastest and
        /// slowest of them), and the strong-scaling efficiency t1 / (N tN)
        /// against the mean; the FFT-normalized efficiency divides it by the
        /// FFT-only baseline's own efficiency, which cancels what the machine
        /// gives (or takes) when all its cores run.
        public var oneRankSecondsPerIteration: Double?
        public var oneRankFastestSecondsPerIteration: Double?
        public var oneRankSlowestSecondsPerIteration: Double?
        public var ranksTimedAlone: Int?
        public var efficiency: Double?
        public var fftNormalizedEfficiency: Double?
        /// The same efficiency of the FFT-only baseline: what the machine's
        /// cores give the transforms alone when all of them run.
        public var fftEfficiency: Double?
        /// With `sections`: seconds per iteration in each part of the engine
        /// (the largest over ranks, part by part).
        public var sections: IterationProfile?

        /// The engine, and its probe modes when several: "dm x3".
        public var label: String { probeModes > 1 ? "\(engine) x\(probeModes)" : engine }
    }

    public static let standardCases = [Case(frames: 400, frameSize: 128), Case(frames: 1600, frameSize: 128),
                                       Case(frames: 400, frameSize: 256)]

    public static func run(_ comm: Communicator, cases: [Case], engines: [String] = ["dm"], modes: [Int] = [1], iterations: Int,
                           batch: Int, subpixelSteps: Int = EngineOptions().subpixelSteps,
                           fftPlanning: FFTPlanning = EngineOptions().fftPlanning, sections: Bool = false) throws -> [Row] {
        try cases.flatMap { c -> [Row] in
            let sim = try Simulation(c.simulationConfig)
            func makeTrials(_ comm: Communicator, sections: Bool) throws -> [Trial] {
                try engines.flatMap { engine in
                    try modes.map { try Trial(comm, case: c, simulation: sim, engine: engine, modes: $0, batch: batch,
                                              subpixelSteps: subpixelSteps, fftPlanning: fftPlanning, sections: sections) }
                }
            }
            let trials = try makeTrials(comm, sections: sections)
            guard comm.size > 1 else {
                for _ in 0..<iterations { for t in trials { try t.step() } }
                return comparedWithDM(try trials.map { try $0.measurement().row })
            }
            // Each of up to four ranks spread over the communicator alone, in
            // turns, made after the N-rank engines' memory was read: its
            // iterations alternate with the N-rank ones, so a slow spell of a
            // shared machine slows both sides of the efficiency alike, and the
            // reference is the mean core the N ranks ran on, not whichever
            // core rank 0 happened to get (on a VM they differ by up to a third).
            let k = min(comm.size, 4, iterations)
            let references = (0..<k).map { $0 * comm.size / k }
            let alone = try comm.split(color: references.contains(comm.rank) ? comm.rank : nil, key: 0)
            let solos = try alone.map { try makeTrials($0, sections: false) }
            for i in 0..<iterations {
                for (e, trial) in trials.enumerated() {
                    try trial.step()
                    if comm.rank == references[i % k] { try solos?[e].step() }
                    try comm.barrier()
                }
            }
            var rows: [Row] = []
            for (e, trial) in trials.enumerated() {
                var row = try trial.measurement().row
                let one = try solos?[e].measurement().row
                let seconds = one?.secondsPerIteration ?? 0, fft = one?.fftSecondsPerIteration ?? 0
                let meanSeconds = try comm.allreduce(seconds, op: .sum) / Double(k)
                row.oneRankSecondsPerIteration = meanSeconds
                row.oneRankFastestSecondsPerIteration = try comm.allreduce(one == nil ? .infinity : seconds, op: .min)
                row.oneRankSlowestSecondsPerIteration = try comm.allreduce(seconds, op: .max)
                row.ranksTimedAlone = k
                let efficiency = meanSeconds / (Double(comm.size) * row.secondsPerIteration)
                row.efficiency = efficiency
                let fftEfficiency = try comm.allreduce(fft, op: .sum) / Double(k) / (Double(comm.size) * row.fftSecondsPerIteration)
                row.fftEfficiency = fftEfficiency
                row.fftNormalizedEfficiency = efficiency / fftEfficiency
                rows.append(row)
            }
            try alone?.free()
            try comm.barrier()
            return comparedWithDM(rows)
        }
    }

    /// Each row's time over one-mode DM's on the same case, when it ran.
    static func comparedWithDM(_ rows: [Row]) -> [Row] {
        guard let dm = rows.first(where: { $0.engine == "dm" && $0.probeModes == 1 }) else { return rows }
        return rows.map { r in
            var r = r
            r.ratioToDM = r.secondsPerIteration / dm.secondsPerIteration
            return r
        }
    }

    /// One case on `comm`, with the layout and the bytes the engine handed
    /// to the network per iteration (means over ranks, and the busiest rank's
    /// exchange), valid on every rank.
    struct Measurement {
        var row: Row
        var layout: TileLayout
        var exchangeBytesMean: Double
        var exchangeBytesMax: Double
        var reductionBytesMean: Double
    }

    static func measure(_ comm: Communicator, case c: Case, iterations: Int, batch: Int, subpixelSteps: Int,
                        fftPlanning: FFTPlanning = .measure, sections: Bool = false) throws -> Measurement {
        let trial = try Trial(comm, case: c, simulation: try Simulation(c.simulationConfig), engine: "dm", modes: 1, batch: batch,
                              subpixelSteps: subpixelSteps, fftPlanning: fftPlanning, sections: sections)
        for _ in 0..<iterations { try trial.step() }
        return try trial.measurement()
    }

    /// An engine on `comm` and the same transforms alone (forward and
    /// inverse of this rank's frames in batches, each frame's exit wave of
    /// every probe mode, unnormalized, with the engine's plan shapes, then
    /// the probe step's single-frame transforms), stepped in turns: a slow
    /// spell hits both.
    final class Trial {
        let comm: Communicator
        let c: Case
        let layout: TileLayout
        let engine: any ReconstructionEngine
        let modes: Int
        let traffic: TrafficCounter
        let frames: Int
        let engineBytes: Double
        let peakBytes: Int
        let forward: FFTPlan2D
        let inverse: FFTPlan2D
        let buffer: ComplexBuffer
        let batches: Int
        let singleForward: FFTPlan2D
        let singleInverse: FFTPlan2D
        let single: ComplexBuffer
        let stepTransforms: (forward: Int, inverse: Int)
        var engineTime = 0.0, fftTime = 0.0, steps = 0

        init(_ comm: Communicator, case c: Case, simulation sim: Simulation, engine name: String, modes: Int, batch: Int,
             subpixelSteps: Int, fftPlanning: FFTPlanning, sections: Bool) throws {
            self.comm = comm
            self.c = c
            self.modes = modes
            let config = c.simulationConfig
            let m = c.frameSize, m2 = m * m
            let grid = ObjectGrid(positions: sim.points.map { ($0.y, $0.x) }, pixelSize: config.geometry.samplePixelSize, frameSize: m)
            let (corners, offsets) = grid.windows(subpixelSteps: subpixelSteps)
            layout = try TileLayout(corners: corners, frameSize: m, objectHeight: grid.height, objectWidth: grid.width,
                                    ranks: comm.size)
            let mine = layout.frames(of: comm.rank)
            frames = mine.count
            var amplitudes = [Float](repeating: 0, count: mine.count * m2)
            for (k, index) in mine.enumerated() {
                let shifted = sim.frame(index).photons.fftShifted(inverse: true)
                for i in 0..<m2 { amplitudes[k * m2 + i] = shifted.values[i].squareRoot() }
            }
            var options = EngineOptions()
            options.algorithm = name
            options.batch = batch
            options.subpixelSteps = subpixelSteps
            options.fftPlanning = fftPlanning
            options.probeUpdateStart = 0
            options.probeModes = modes

            let before = residentBytes()
            traffic = TrafficCounter(comm)
            engine = try EngineRegistry.make(comm: traffic, layout: layout,
                                      frames: LocalFrames(indices: mine, corners: mine.map { corners[$0] },
                                                          offsets: mine.map { offsets[$0] }, amplitudes: amplitudes,
                                                          weights: [Float](repeating: 1, count: mine.count)),
                                      mask: [Float](repeating: 1, count: m2), probe: sim.probe, options: options)
            amplitudes = []
            try engine.iterate()  // warm up caches and pages
            engineBytes = Double(max(0, residentBytes() - before))
            peakBytes = peakResidentBytes()
            traffic.reset()
            engine.profiling = sections

            let b = max(1, min(options.framesPerBatch, mine.count))
            forward = try FFTPlan2D(height: m, width: m, batch: b * modes, direction: .forward, inPlace: true)
            inverse = try FFTPlan2D(height: m, width: m, batch: b * modes, direction: .inverse, inPlace: true)
            buffer = ComplexBuffer(count: b * modes * m2, fill: Complex(1, 0.5))
            batches = (mine.count + b - 1) / b
            singleForward = try FFTPlan2D(height: m, width: m, batch: 1, direction: .forward, inPlace: true)
            singleInverse = try FFTPlan2D(height: m, width: m, batch: 1, direction: .inverse, inPlace: true)
            single = ComplexBuffer(count: m2)
            stepTransforms = engine.probeStepTransforms
        }

        /// One engine iteration, then the FFT-only pass.
        func step() throws {
            try comm.barrier()
            var start = Date()
            try engine.iterate()
            engineTime += Date().timeIntervalSince(start)
            try comm.barrier()
            let roundTrip = 1 / Float(c.frameSize * c.frameSize)
            for _ in 0..<batches {
                start = Date()
                try forward.execute(inPlace: buffer, normalization: .none)
                try inverse.execute(inPlace: buffer, normalization: .none)
                fftTime += Date().timeIntervalSince(start)
                // A round trip scales by m^2: undone outside the timing, so the values stay finite.
                let values = UnsafeMutableRawPointer(buffer.baseAddress).assumingMemoryBound(to: Float.self)
                for i in 0..<(2 * buffer.count) { values[i] *= roundTrip }
            }
            for (plan, count) in [(singleForward, stepTransforms.forward), (singleInverse, stepTransforms.inverse)] {
                for _ in 0..<count {
                    single.buffer.update(repeating: Complex(1, 0.5))
                    start = Date()
                    try plan.execute(inPlace: single, normalization: .none)
                    fftTime += Date().timeIntervalSince(start)
                }
            }
            steps += 1
        }

        /// The figures over the steps so far (collective on `comm`).
        func measurement() throws -> Measurement {
            let n = Double(max(1, steps)), ranks = Double(comm.size), m2 = c.frameSize * c.frameSize
            let exchangeMean = try comm.allreduce(Double(traffic.exchangeBytes) / n, op: .sum) / ranks
            let exchangeMax = try comm.allreduce(Double(traffic.exchangeBytes) / n, op: .max)
            let reductionMean = try comm.allreduce(Double(traffic.reductionBytes) / n, op: .sum) / ranks
            let seconds = try comm.allreduce(engineTime / n, op: .max)
            let fft = try comm.allreduce(fftTime / n, op: .max)

            let region = layout.regions[comm.rank]
            let data = Double(frames * m2 * (4 + 8 * modes) + region.area * 8 + modes * m2 * 8)
            let worst = try comm.allreduce(engineBytes / data, op: .max)
            let engineMB = try comm.allreduce(engineBytes / 1e6, op: .max)
            let dataMB = try comm.allreduce(data / 1e6, op: .max)
            let peak = try comm.allreduce(Double(peakBytes) / 1e6, op: .max)
            var row = Row(engine: engine.name, probeModes: modes, frames: c.frames, frameSize: c.frameSize, ranks: comm.size, iterations: steps, secondsPerIteration: seconds,
                          microsecondsPerFrameIteration: seconds / Double(c.frames) * 1e6,
                          coreMicrosecondsPerFrameIteration: seconds / Double(c.frames) * 1e6 * ranks,
                          fftSecondsPerIteration: fft, ratioToFFT: seconds / fft,
                          engineMegabytes: engineMB, dataMegabytes: dataMB, memoryRatio: worst, peakResidentMegabytes: peak)
            if engine.profiling {
                let p = engine.profile
                let perIteration = { (x: Double) in try self.comm.allreduce(x / n, op: .max) }
                var s = IterationProfile()
                s.reflection = try perIteration(p.reflection)
                s.transforms = try perIteration(p.transforms)
                s.projection = try perIteration(p.projection)
                s.exitUpdate = try perIteration(p.exitUpdate)
                s.objectUpdate = try perIteration(p.objectUpdate)
                s.probeUpdate = try perIteration(p.probeUpdate)
                s.iterations = p.iterations
                row.sections = s
            }
            return Measurement(row: row, layout: layout, exchangeBytesMean: exchangeMean, exchangeBytesMax: exchangeMax,
                               reductionBytesMean: reductionMean)
        }
    }

    /// Current resident set size (Linux /proc/self/statm).
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }

    static func peakResidentBytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
    }
}
