import ArgumentParser
import Benchmarks
import Foundation
import Recon

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks, each reported beside a baseline measured in the same run.",
        subcommands: [SimulateBench.self])

    struct SimulateBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "simulate",
            abstract: "Frames/s that simulate writes on 1 rank and on all ranks, beside the disk's raw write rate.")

        @Option(help: "Scan (RxC, spiral:N, rounds:N).")
        var scan = "30x30"
        @Option(help: "Frame size in pixels.")
        var frameSize = 256
        @Option(help: "Directory for the temporary files.")
        var directory = NSTemporaryDirectory()
        @Flag(help: "Print JSON instead of a table.")
        var json = false

        func run() throws {
            var config = SimulationConfig.standard
            config.geometry.frameSize = frameSize
            config.geometry.detectorPixelSize = 60e-6 * 128 / Double(frameSize)
            config.scan.pattern = try ScanPattern(parsing: scan)
            try withMPI { world in
                let report = try SimulateBenchmark.run(world, config: config, directory: directory)
                guard world.rank == 0 else { return }
                if json { print(try jsonLine(report)); return }
                print("bench simulate: \(report.frames) frames of \(report.frameSize)x\(report.frameSize) float32, \(world.size) ranks available")
                print("| what | ranks | frames | s | frames/s | MB/s |")
                print("| --- | ---: | ---: | ---: | ---: | ---: |")
                for r in report.rows {
                    print(String(format: "| %@ | %d | %d | %.2f | %.1f | %.1f |", r.label, r.ranks, r.frames, r.seconds,
                                 r.framesPerSecond, r.megabytesPerSecond))
                }
                for (k, v) in report.fractionOfDisk.sorted(by: { $0.key < $1.key }) {
                    print(String(format: "write rate on %@ = %.2f x the raw disk rate", k, v))
                }
            }
        }
    }
}
