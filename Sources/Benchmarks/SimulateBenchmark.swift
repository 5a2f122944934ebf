import CXI
import Foundation
import Recon
import Simulator
import SwiftMPI

/// Frames per second that `simulate` writes on one rank and on all ranks,
/// beside the raw rate at which this disk takes the same bytes, and the
/// rate of simulating frames without writing them, all in one run.
public enum SimulateBenchmark {
    public struct Row: Codable, Sendable {
        public var label: String
        public var ranks: Int
        public var frames: Int
        public var seconds: Double
        public var framesPerSecond: Double
        public var megabytesPerSecond: Double
    }

    public struct Report: Codable, Sendable {
        public var frameSize: Int
        public var frames: Int
        public var rows: [Row]
        /// Disk rate divided into each write rate.
        public var fractionOfDisk: [String: Double]
    }

    public static func run(_ world: Communicator, config: SimulationConfig, directory: String) throws -> Report {
        let n = config.geometry.frameSize
        let frames = config.scan.pattern.count
        let bytesPerFrame = n * n * 4
        var rows: [Row] = []

        // Baseline: plain sequential writes of the same bytes, synced, from rank 0.
        if world.rank == 0 {
            let path = directory + "/ns-bench-disk-\(getpid()).bin"
            let block = [UInt8](repeating: 0x5A, count: bytesPerFrame * 8)
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            let start = Date()
            var written = 0
            while written < bytesPerFrame * frames {
                try handle.write(contentsOf: block)
                written += block.count
            }
            try handle.synchronize()
            let seconds = Date().timeIntervalSince(start)
            try handle.close()
            try? FileManager.default.removeItem(atPath: path)
            rows.append(Row(label: "disk (sequential write + fsync)", ranks: 1, frames: written / bytesPerFrame, seconds: seconds,
                            framesPerSecond: Double(written / bytesPerFrame) / seconds,
                            megabytesPerSecond: Double(written) / seconds / 1e6))
        }

        let sim = try Simulation(config)
        // Compute only, one rank: what simulating costs before any I/O.
        if world.rank == 0 {
            let count = min(frames, 64)
            let start = Date()
            for i in 0..<count { _ = sim.frame(i) }
            let seconds = Date().timeIntervalSince(start)
            rows.append(Row(label: "simulate only (no writing)", ranks: 1, frames: count, seconds: seconds,
                            framesPerSecond: Double(count) / seconds, megabytesPerSecond: Double(count * bytesPerFrame) / seconds / 1e6))
        }

        var options = SimulatedScanWriter.Options()
        options.truthIntensities = false
        let solo = try world.split(color: world.rank == 0 ? 0 : nil, key: 0)
        for (label, comm) in [("simulate + parallel CXI write", solo), ("simulate + parallel CXI write", world)] {
            try world.barrier()
            guard let comm else { try world.barrier(); continue }
            let path = directory + "/ns-bench-sim-\(comm.size).cxi"
            let summary = try SimulatedScanWriter.write(sim, to: path, comm: comm, options: options)
            if comm.rank == 0 { try? FileManager.default.removeItem(atPath: path) }
            if world.rank == 0 {
                rows.append(Row(label: label, ranks: comm.size, frames: frames, seconds: summary.seconds,
                                framesPerSecond: Double(frames) / summary.seconds,
                                megabytesPerSecond: Double(summary.bytes) / summary.seconds / 1e6))
            }
            try world.barrier()
            if comm === solo && world.size == 1 { break }
        }
        var fractions: [String: Double] = [:]
        if let disk = rows.first?.megabytesPerSecond {
            for r in rows where r.label.hasPrefix("simulate + ") { fractions["\(r.ranks) ranks"] = r.megabytesPerSecond / disk }
        }
        return Report(frameSize: n, frames: frames, rows: rows, fractionOfDisk: fractions)
    }
}
