import Engines
import Foundation
import Recon
import SwiftMPI

/// Strong and weak scaling of the distributed solver on sub-communicators of
/// the job (1, 2, 4, ... ranks, all measured in the same run), with the bytes
/// each rank hands to the network per iteration beside the halo model and
/// the whole-object allreduce of the peer tools.
public enum ScalingBenchmark {
    public enum Mode: String, Codable, Sendable { case strong, weak }

    public struct Row: Codable, Sendable {
        public var mode: Mode
        public var ranks: Int
        public var frames: Int
        public var frameSize: Int
        public var objectHeight: Int
        public var objectWidth: Int
        public var tiles: String
        public var secondsPerIteration: Double
        public var fftSecondsPerIteration: Double
        /// Strong: t1 / (N tN); weak: t1 / tN, against the 1-rank row of the
        /// same mode and run (nil when the run has none).
        public var efficiency: Double?
        /// The same with each time divided by its pure FFT time measured
        /// alongside: (t1/fft1) / (tN/fftN), which cancels a change in the
        /// machine's speed between the two measurements.
        public var fftNormalizedEfficiency: Double?
        /// Halo exchange bytes sent per rank and iteration, counted: the mean
        /// over ranks and the busiest rank.
        public var haloBytesPerRank: Double
        public var haloBytesMaxRank: Double
        /// Reduction payload per rank and iteration (probe sums, errors).
        public var reductionBytesPerRank: Double
        /// What the layout's overlaps predict, and the uniform-grid model.
        public var layoutHaloBytesPerRank: Double
        public var modelHaloBytesPerRank: Double
        /// A whole-object allreduce's bytes per rank (the peer tools' scheme).
        public var allreduceBytesPerRank: Double
        /// More ranks on a node than it has cores.
        public var oversubscribed: Bool

        public static let csvHeader = "mode,ranks,frames,frame_size,object_height,object_width,tiles,s_per_iter,fft_s_per_iter,efficiency,fft_normalized_efficiency,halo_bytes_per_rank,halo_bytes_max_rank,reduction_bytes_per_rank,layout_halo_bytes_per_rank,model_halo_bytes_per_rank,allreduce_bytes_per_rank,oversubscribed"

        public var csvLine: String {
            [mode.rawValue, "\(ranks)", "\(frames)", "\(frameSize)", "\(objectHeight)", "\(objectWidth)", tiles,
             String(format: "%.6f", secondsPerIteration), String(format: "%.6f", fftSecondsPerIteration),
             efficiency.map { String(format: "%.4f", $0) } ?? "",
             fftNormalizedEfficiency.map { String(format: "%.4f", $0) } ?? "",
             String(format: "%.0f", haloBytesPerRank), String(format: "%.0f", haloBytesMaxRank),
             String(format: "%.0f", reductionBytesPerRank), String(format: "%.0f", layoutHaloBytesPerRank),
             String(format: "%.0f", modelHaloBytesPerRank), String(format: "%.0f", allreduceBytesPerRank),
             oversubscribed ? "yes" : "no"].joined(separator: ",")
        }

        public init(csvLine line: Substring) throws {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            func bad(_ what: String) -> ScalingCSVError { ScalingCSVError(line: String(line), problem: what) }
            guard f.count == 18 else { throw bad("expected 18 fields, found \(f.count)") }
            guard let mode = Mode(rawValue: f[0]) else { throw bad("mode must be strong or weak, got '\(f[0])'") }
            func int(_ i: Int) throws -> Int { guard let v = Int(f[i]) else { throw bad("field \(i + 1) is not an integer: '\(f[i])'") }; return v }
            func double(_ i: Int) throws -> Double { guard let v = Double(f[i]) else { throw bad("field \(i + 1) is not a number: '\(f[i])'") }; return v }
            self.mode = mode
            ranks = try int(1); frames = try int(2); frameSize = try int(3); objectHeight = try int(4); objectWidth = try int(5)
            tiles = f[6]
            secondsPerIteration = try double(7); fftSecondsPerIteration = try double(8)
            efficiency = f[9].isEmpty ? nil : try double(9)
            fftNormalizedEfficiency = f[10].isEmpty ? nil : try double(10)
            haloBytesPerRank = try double(11); haloBytesMaxRank = try double(12); reductionBytesPerRank = try double(13)
            layoutHaloBytesPerRank = try double(14); modelHaloBytesPerRank = try double(15); allreduceBytesPerRank = try double(16)
            oversubscribed = f[17] == "yes"
        }

        init(mode: Mode, measurement m: ReconBenchmark.Measurement, oversubscribed: Bool) {
            let l = m.layout
            self.mode = mode
            ranks = m.row.ranks
            frames = m.row.frames
            frameSize = m.row.frameSize
            objectHeight = l.objectHeight
            objectWidth = l.objectWidth
            tiles = "\(l.rows)x\(l.columns)"
            secondsPerIteration = m.row.secondsPerIteration
            fftSecondsPerIteration = m.row.fftSecondsPerIteration
            haloBytesPerRank = m.exchangeBytesMean
            haloBytesMaxRank = m.exchangeBytesMax
            reductionBytesPerRank = m.reductionBytesMean
            layoutHaloBytesPerRank = HaloTrafficModel.layoutBytes(l).mean
            modelHaloBytesPerRank = HaloTrafficModel.uniformGridBytes(objectHeight: l.objectHeight, objectWidth: l.objectWidth,
                                                                      frameSize: l.frameSize, rows: l.rows, columns: l.columns)
            allreduceBytesPerRank = HaloTrafficModel.wholeObjectAllreduceBytes(objectHeight: l.objectHeight,
                                                                               objectWidth: l.objectWidth, ranks: l.ranks)
            self.oversubscribed = oversubscribed
        }
    }

    public struct Options: Sendable {
        public var sizes: [Int]
        public var strongFrames = 400
        public var weakFramesPerRank = 200
        public var frameSize = 128
        public var iterations = 5
        public var batch = 8
        public var subpixelSteps = EngineOptions().subpixelSteps
        public var modes: [Mode] = [.strong, .weak]
        public init(sizes: [Int]) { self.sizes = sizes }
    }

    /// Powers of two up to `ranks`, and `ranks` itself.
    public static func defaultSizes(ranks: Int) -> [Int] {
        var sizes: [Int] = [], n = 1
        while n < ranks { sizes.append(n); n *= 2 }
        return sizes + [ranks]
    }

    /// Collective over `world`; the rows are complete on rank 0.
    public static func run(_ world: Communicator, options o: Options) throws -> [Row] {
        let crowded = try oversubscription(world, sizes: o.sizes)
        var rows: [Row] = []
        for mode in o.modes {
            for n in o.sizes {
                let sub = try world.split(color: world.rank < n ? 0 : nil, key: world.rank)
                if let sub {
                    let frames = mode == .strong ? o.strongFrames : o.weakFramesPerRank * n
                    let m = try ReconBenchmark.measure(sub, case: .init(frames: frames, frameSize: o.frameSize),
                                                       iterations: o.iterations, batch: o.batch, subpixelSteps: o.subpixelSteps)
                    rows.append(Row(mode: mode, measurement: m, oversubscribed: crowded[n] ?? false))
                    try sub.free()
                }
                // Ranks left out sleep, so they take no core from those measured.
                try world.sleepingBarrier()
            }
        }
        return withEfficiencies(rows)
    }

    /// Efficiencies against the 1-rank row of each mode, where there is one.
    public static func withEfficiencies(_ rows: [Row]) -> [Row] {
        rows.map { r in
            var r = r
            if let one = rows.first(where: { $0.mode == r.mode && $0.ranks == 1 && $0.frameSize == r.frameSize
                && (r.mode == .weak || $0.frames == r.frames) }) {
                r.efficiency = r.mode == .strong ? one.secondsPerIteration / (Double(r.ranks) * r.secondsPerIteration)
                    : one.secondsPerIteration / r.secondsPerIteration
                r.fftNormalizedEfficiency = (one.secondsPerIteration / one.fftSecondsPerIteration)
                    / (r.secondsPerIteration / r.fftSecondsPerIteration)
            }
            return r
        }
    }

    /// For each size n: whether the first n ranks put more ranks on some node
    /// than it has cores online.
    static func oversubscription(_ world: Communicator, sizes: [Int]) throws -> [Int: Bool] {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count - 1)
        var hash = 5381
        for c in name.prefix(while: { $0 != 0 }) { hash = (hash &* 33) &+ Int(c) }
        let hosts = try world.allgather(hash)
        let cores = try world.allgather(ProcessInfo.processInfo.activeProcessorCount)
        var out: [Int: Bool] = [:]
        for n in sizes {
            var perHost: [Int: Int] = [:]
            for r in 0..<min(n, hosts.count) { perHost[hosts[r], default: 0] += 1 }
            out[n] = (0..<min(n, hosts.count)).contains { perHost[hosts[$0]]! > cores[$0] }
        }
        return out
    }

    /// The object sums' traffic at a scale this machine cannot run: a spiral
    /// scan like the benchmark's, split over `ranks`.
    public struct Projection: Codable, Sendable {
        public var frames: Int
        public var frameSize: Int
        public var ranks: Int
        public var objectHeight: Int
        public var objectWidth: Int
        public var tiles: String
        public var layoutHaloBytesPerRank: Double
        public var layoutHaloBytesMaxRank: Double
        public var modelHaloBytesPerRank: Double
        public var allreduceBytesPerRank: Double
        public var allreduceOverHalo: Double { allreduceBytesPerRank / layoutHaloBytesPerRank }
    }

    public static func project(frames: Int, frameSize: Int, ranks: Int) throws -> Projection {
        // The measured points' scan, only larger: positions without frames.
        let config = ReconBenchmark.Case(frames: frames, frameSize: frameSize).simulationConfig
        let grid = ObjectGrid(positions: config.scan.positions(), pixelSize: config.geometry.samplePixelSize, frameSize: frameSize)
        let layout = try TileLayout(corners: grid.corners, frameSize: frameSize, objectHeight: grid.height,
                                    objectWidth: grid.width, ranks: ranks)
        let exact = HaloTrafficModel.layoutBytes(layout)
        return Projection(frames: frames, frameSize: frameSize, ranks: ranks, objectHeight: grid.height, objectWidth: grid.width,
                          tiles: "\(layout.rows)x\(layout.columns)", layoutHaloBytesPerRank: exact.mean,
                          layoutHaloBytesMaxRank: exact.max,
                          modelHaloBytesPerRank: HaloTrafficModel.uniformGridBytes(
                              objectHeight: grid.height, objectWidth: grid.width, frameSize: frameSize,
                              rows: layout.rows, columns: layout.columns),
                          allreduceBytesPerRank: HaloTrafficModel.wholeObjectAllreduceBytes(
                              objectHeight: grid.height, objectWidth: grid.width, ranks: ranks))
    }
}

public struct ScalingCSVError: Error, CustomStringConvertible {
    public let line: String
    public let problem: String
    public var description: String { "scaling CSV line '\(line)': \(problem)" }
}
