import Foundation
import Ingest
import Numerics
import Recon
import Simulator
import SwiftFFTW
import SwiftMPI

/// Raw fast-CCD frames cleaned per second on the ranks given, beside the
/// FFTs of the downsampling step alone (same sizes, same plans), the two
/// timed alternately in the same run.
public enum PreprocessBenchmark {
    public struct Row: Codable, Sendable {
        public var ranks: Int
        public var detector: Int
        public var outputSize: Int
        public var framesPerRank: Int
        /// All ranks together.
        public var framesPerSecond: Double
        /// The downsampling's own transforms (pruned: real rows, kept columns, the output block).
        public var fftFramesPerSecond: Double
        public var ratioToFFT: Double
        /// A full complex 2-D transform of the crop and the output's inverse, as the step once did.
        public var fullFFTFramesPerSecond: Double
        public var ratioToFullFFT: Double
        /// Mean seconds per frame in each step, on the slowest rank.
        public var steps: [String: Double]
        /// Frames (all ranks) whose readout spectrum was searched for lines the darks did not show.
        public var searchedFrames: Int
    }

    public static func run(_ comm: Communicator, detector: Int = 1024, outputSize: Int = 256, frames: Int = 32,
                           searchEveryFrame: Bool = false) throws -> Row {
        let model = DetectorModel()
        let truth = try DetectorTruth(model: model, rows: detector, columns: detector)
        let layout = truth.layout
        // A diffraction-like pattern: a bright disc and a halo falling as 1/q^3.
        let c = Double(detector) / 2, disc = Double(detector) / 10
        var photons = [Float](repeating: 0, count: detector * detector)
        for y in 0..<detector { for x in 0..<detector {
            let r = hypot(Double(y) - c, Double(x) - c)
            photons[y * detector + x] = Float(r < disc ? 400 : 400 * pow(disc / r, 3))
        } }
        let raws = (0..<4).map { truth.rawFrame(photons: photons, seed: 11, stream: UInt64(comm.rank * 4 + $0)).map(Float.init) }
        var dark = DarkStatistics(pixels: layout.rawPixels, readout: layout)
        for k in 0..<8 { try dark.add(truth.rawFrame(photons: nil, seed: 12, stream: UInt64(k)).map(Float.init)) }
        dark = try dark.merged(over: SingleRank())
        var options = PreprocessOptions()
        options.outputSize = outputSize
        options.searchEveryFrame = searchEveryFrame
        let cleaner = try FrameCleaner(layout: layout, gain: model.gain, dark: dark, fileMask: nil, centre: (c, c), options: options)
        _ = try cleaner.clean(raw: raws[0])  // warm up
        let searchedBefore = cleaner.searchedFrames
        cleaner.recordTimings = true

        let forward = try FFTPlan2D(height: detector, width: detector, direction: .forward, inPlace: true)
        let inverse = try FFTPlan2D(height: outputSize, width: outputSize, direction: .inverse, inPlace: true)
        let big = ComplexBuffer(count: detector * detector, fill: Complex(1, 0))
        let small = ComplexBuffer(count: outputSize * outputSize, fill: Complex(1, 0))
        var cleanTime = 0.0, fftTime = 0.0, fullTime = 0.0
        try comm.barrier()
        for k in 0..<frames {
            var start = Date()
            _ = try cleaner.clean(raw: raws[k % raws.count])
            cleanTime += Date().timeIntervalSince(start)
            start = Date()
            try cleaner.runDownsamplingTransforms()
            fftTime += Date().timeIntervalSince(start)
            start = Date()
            try forward.execute(inPlace: big, normalization: .none)
            try inverse.execute(inPlace: small, normalization: .none)
            fullTime += Date().timeIntervalSince(start)
            // Unnormalized transforms scale the values: reset outside the timing, so they stay finite.
            big.buffer.update(repeating: Complex(1, 0))
            small.buffer.update(repeating: Complex(1, 0))
        }
        let slowest = try comm.allreduce(cleanTime, op: .max)
        let slowestFFT = try comm.allreduce(fftTime, op: .max)
        let slowestFull = try comm.allreduce(fullTime, op: .max)
        var steps: [String: Double] = [:]
        // The same names in the same order on every rank: a step one rank never ran is 0 there.
        for name in FrameCleaner.stepNames {
            steps[name] = try comm.allreduce((cleaner.stepSeconds[name] ?? 0) / Double(frames), op: .max)
        }
        let searched = try comm.allreduce(Double(cleaner.searchedFrames - searchedBefore), op: .sum)
        let total = Double(frames * comm.size)
        return Row(ranks: comm.size, detector: detector, outputSize: outputSize, framesPerRank: frames,
                   framesPerSecond: total / slowest, fftFramesPerSecond: total / slowestFFT, ratioToFFT: slowest / slowestFFT,
                   fullFFTFramesPerSecond: total / slowestFull, ratioToFullFFT: slowest / slowestFull, steps: steps,
                   searchedFrames: Int(searched))
    }
}
