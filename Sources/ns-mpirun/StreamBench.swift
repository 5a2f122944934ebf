import ArgumentParser
import Benchmarks
import Foundation
import Recon
import Simulator
import Streaming

extension Bench {
    struct StreamBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stream",
            abstract: "A live session end to end: a simulated raw scan sent by the virtual detector at a rate, cleaned, solved while it arrives and written.",
            discussion: """
                Cases: `paper` (the original system's case: a 40x40 scan of 128x128-pixel raw frames at 10 Hz), \
                `max` (1024x1024 raw frames to 256x256 clean frames, sent as fast as the pipeline takes them: \
                the highest sustained rate with zero loss). Reports whether the sender ever had to wait, the \
                sustained rate, the seconds from the last frame to the written file, the latency from a frame's \
                arrival to its placement in the solver, and the object error against the truth.
                """)

        @Option(help: "Cases, comma-separated: paper, max.")
        var cases = "paper,max"
        @Option(help: "Scan of the paper case.")
        var paperScan = "40x40"
        @Option(help: "Rate of the paper case in Hz.")
        var paperRate = 10.0
        @Option(help: "Scan of the max case.")
        var maxScan = "12x12"
        @Option(help: "Iterations after the last frame.")
        var iterations = 100
        @Flag(help: "Print JSON instead of a table.")
        var json = false

        func validate() throws {
            for c in cases.split(separator: ",") where c != "paper" && c != "max" {
                throw ValidationError("--cases items are paper or max, got '\(c)'")
            }
            guard paperRate > 0, iterations >= 0 else { throw ValidationError("--paper-rate must be positive and --iterations at least 0") }
            _ = try ScanPattern(parsing: paperScan)
            _ = try ScanPattern(parsing: maxScan)
        }

        func run() throws {
            try withMPI { world in
                var rows: [StreamBenchmark.Row] = []
                for c in cases.split(separator: ",") {
                    var config = SimulationConfig.standard
                    config.detector = DetectorModel()
                    config.darkFrames = 16
                    var options = StreamOptions()
                    options.finalIterations = iterations
                    // The beamline knows its zone plate's defocus: the first probe's phase.
                    options.probeDefocus = config.zonePlate.defocus
                    var rate: Double? = nil
                    if c == "paper" {
                        config.scan.pattern = try ScanPattern(parsing: paperScan)
                        rate = paperRate
                    } else {
                        config.scan.pattern = try ScanPattern(parsing: maxScan)
                        // The 128-pixel case's optics on a 1024-pixel detector, binned 4x by the FFT.
                        config.geometry.frameSize = 1024
                        config.geometry.detectorPixelSize = 60e-6 / 8
                        options.preprocess.outputSize = 256
                    }
                    if world.rank == 0 && !json {
                        print("bench stream: \(c): \(config.scan.pattern), \(config.geometry.frameSize)x\(config.geometry.frameSize) raw frames, \(rate.map { "\($0) Hz" } ?? "full speed"), \(world.size) ranks ...")
                        fflush(nil)
                    }
                    rows.append(try StreamBenchmark.run(world, config: config, rate: rate, options: options))
                }
                guard world.rank == 0 else { return }
                if json { for r in rows { print(try jsonLine(r)) }; return }
                print("| frames | raw | clean | ranks | rate Hz | send s (nominal) | kept up | start-up s | sustained frames/s | placed | rejected | last frame to file s | latency median ms | latency p99 ms | iterations (final) | fourier | NRMSE |")
                print("| ---: | --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
                for r in rows {
                    print(String(format: "| %d | %dx%d | %d | %d | %@ | %.1f (%@) | %@ | %.2f | %.1f | %d | %d | %.2f | %.1f | %.1f | %d (%d) | %.4f | %@ |",
                                 r.frames, r.rawShape[0], r.rawShape[1], r.cleanSize, r.ranks, r.rate.map { String(format: "%.0f", $0) } ?? "max",
                                 r.sendSeconds, r.nominalSeconds.map { String(format: "%.1f", $0) } ?? "-", r.keptUp ? "yes" : "no",
                                 r.startupSeconds, r.sustainedFramesPerSecond, r.placed, r.rejected, r.secondsFromLastFrameToFile,
                                 1e3 * r.latencyMedianSeconds, 1e3 * r.latency99Seconds, r.iterations, r.finalIterations, r.fourierError,
                                 r.nrmse.map { String(format: "%.4f", $0) } ?? "-"))
                }
            }
        }
    }
}
