import Foundation
import Ingest
import Recon
import Simulator
import SwiftMPI

/// Streams a simulated scan into one CXI file: each rank computes a
/// contiguous block of frames and all ranks write in collective rounds of
/// `batch` frames, so memory stays at a few frames per rank whatever the
/// scan size. Frames depend only on (seed, index), never on the rank count.
public struct SimulatedScanWriter {
    public struct Options: Sendable {
        public var batch: Int = 8
        /// Also store the noise-free intensities under /entry_1/ns_truth.
        public var truthIntensities: Bool = true
        /// Offer the true probe at source_1/illumination (readers then start from it).
        public var storeIllumination: Bool = false
        /// Record the zone plate and defocus (CXIPaths.optics), as an instrument's file does.
        public var recordOptics: Bool = true
        public var command: String = ""
        public var version: String = ""
        public init() {}
    }

    public struct Summary: Sendable {
        public var frames: Int
        public var darkFrames: Int
        public var bytes: Int
        public var seconds: Double
    }

    /// Frames [first, first + count) owned by `rank` of `size`.
    public static func block(frames: Int, rank: Int, size: Int) -> (first: Int, count: Int) {
        let first = frames * rank / size, end = frames * (rank + 1) / size
        return (first, end - first)
    }

    public static func write(_ sim: Simulation, to path: String, comm: Communicator? = nil, options: Options = Options(),
                             progress: ((Int, Int) -> Void)? = nil) throws -> Summary {
        let start = Date()
        let g = sim.config.geometry, n = sim.frameSize
        let layout = sim.detector?.layout
        let frameWidth = layout?.rawColumns ?? n
        let scan = CXIScan(energy: g.energy, distance: g.distance, xPixelSize: g.detectorPixelSize,
                           yPixelSize: g.detectorPixelSize, frameHeight: n, frameWidth: frameWidth,
                           positions: sim.recordedPositions,
                           mask: layout == nil ? sim.config.beamstop.map { b in
                               b.map(frameSize: n).values.map { $0 < 1 ? PixelMask.shadowed : 0 }
                           } : nil,
                           illumination: options.storeIllumination ? sim.probe : nil,
                           readout: layout, gain: sim.detector?.model.gain, darkFrames: sim.config.darkFrames,
                           optics: options.recordOptics ? sim.config.zonePlate : nil)
        let writer = try CXIWriter(path: path, scan: scan, frameType: layout == nil ? .float32 : .uint16, comm: comm,
                                   version: options.version, command: options.command)
        try writer.writeTruth(sim, intensities: options.truthIntensities)

        let rank = comm?.rank ?? 0, size = comm?.size ?? 1
        let mine = block(frames: sim.frameCount, rank: rank, size: size)
        let largest = (0..<size).map { block(frames: sim.frameCount, rank: $0, size: size).count }.max() ?? 0
        let rounds = (largest + options.batch - 1) / options.batch
        var bytes = 0
        for round in 0..<rounds {
            let first = mine.first + round * options.batch
            let count = max(0, min(options.batch, mine.first + mine.count - first))
            var clean: [Float] = [], photons: [Float] = [], raw: [UInt16] = []
            for index in first..<(first + count) {
                let frame = sim.frame(index)
                if options.truthIntensities { clean.append(contentsOf: frame.clean.values) }
                if let r = frame.raw { raw.append(contentsOf: r) } else { photons.append(contentsOf: frame.photons.values) }
            }
            if layout == nil {
                try writer.writeFrames(photons, first: first, count: count)
                bytes += photons.count * 4
            } else {
                try writer.writeFrames(raw, first: first, count: count)
                bytes += raw.count * 2
            }
            if options.truthIntensities { try writer.writeTruthIntensities(clean, first: first, count: count) }
            progress?(min(sim.frameCount, (round + 1) * options.batch * size), sim.frameCount)
        }

        let darks = block(frames: sim.config.darkFrames, rank: rank, size: size)
        let largestDark = (0..<size).map { block(frames: sim.config.darkFrames, rank: $0, size: size).count }.max() ?? 0
        for round in 0..<((largestDark + options.batch - 1) / options.batch) {
            let first = darks.first + round * options.batch
            let count = max(0, min(options.batch, darks.first + darks.count - first))
            let values = (first..<(first + count)).flatMap { sim.darkFrame($0) ?? [] }
            try writer.writeDarks(values, first: first, count: count)
            bytes += values.count * 2
        }
        try writer.close()
        let total = try comm?.allreduce(bytes, op: .sum) ?? bytes
        return Summary(frames: sim.frameCount, darkFrames: sim.config.darkFrames, bytes: total,
                       seconds: Date().timeIntervalSince(start))
    }
}
