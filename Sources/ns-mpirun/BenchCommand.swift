import ArgumentParser
import Benchmarks
import Engines
import Foundation
import Recon
import Simulator

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks, each reported beside a baseline measured in the same run.",
        subcommands: [SimulateBench.self, ReconBench.self, PreprocessBench.self, StreamBench.self, ScalingBench.self, ScalingReport.self])

    struct ReconBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "recon",
            abstract: "Engines on simulated scans (400 and 1600 frames of 128x128, 400 of 256x256): time per iteration beside the pure FFT time and DM's, and memory.")

        @Option(help: "Engines to time, comma-separated registry names, stepped in turns on each case (an rPIE iteration is an epoch).")
        var engines = "dm"

        @Option(help: "Probe modes, comma-separated: each engine runs with each count, stepped in turns (the FFT baseline transforms every mode's exit waves).")
        var probeModes = "1"
        @Option(help: "Timed iterations per case.")
        var iterations = 10
        @Option(help: "Frames per FFT batch.")
        var batch = 8
        @Option(help: "Sub-pixel steps of the engine (0: whole-pixel positions).")
        var subpixel = EngineOptions().subpixelSteps
        @Option(help: "The engine's FFT planning: measure or estimate (the FFT baseline is always measured).")
        var fftPlanning = EngineOptions().fftPlanning
        @Option(help: "Cases as FRAMESxSIZE, comma-separated (default: 400x128,1600x128,400x256).")
        var cases: String?
        @Flag(help: "Also time the parts of each iteration (reflection, transforms, projection, exit-wave update, object and probe updates).")
        var sections = false
        @Flag(help: "Print JSON instead of a table.")
        var json = false

        func parsedCases() throws -> [ReconBenchmark.Case] {
            guard let cases else { return ReconBenchmark.standardCases }
            return try cases.split(separator: ",").map { item in
                let p = item.split(separator: "x").compactMap { Int(String($0)) }
                guard p.count == 2, p[0] > 0, p[1] >= 64 else {
                    throw ValidationError("--cases items look like 400x128 (frames x size, size at least 64), got '\(item)'")
                }
                return ReconBenchmark.Case(frames: p[0], frameSize: p[1])
            }
        }

        var engineNames: [String] { engines.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        var modeCounts: [Int] { probeModes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

        func validate() throws {
            _ = try parsedCases()
            for name in engineNames {
                if let problem = EngineRegistry.problem(naming: name) { throw ValidationError("--engines: \(problem)") }
            }
            guard iterations > 0, batch > 0 else { throw ValidationError("--iterations and --batch must be positive") }
            let counts = modeCounts
            guard !counts.isEmpty, counts.count == probeModes.split(separator: ",").count, counts.allSatisfy({ (1...8).contains($0) }) else {
                throw ValidationError("--probe-modes: give counts from 1 to 8, comma-separated, got '\(probeModes)'")
            }
            for name in engineNames where counts.contains(where: { $0 > 1 }) && EngineRegistry.kind(named: name)?.modes == false {
                throw ValidationError("--probe-modes: \(name) models one coherent probe")
            }
        }

        func run() throws {
            let cases = try parsedCases()
            try withMPI { world in
                let rows = try ReconBenchmark.run(world, cases: cases, engines: engineNames, modes: modeCounts, iterations: iterations, batch: batch,
                                                  subpixelSteps: subpixel, fftPlanning: fftPlanning, sections: sections)
                guard world.rank == 0 else { return }
                if json { print(try jsonLine(rows)); return }
                print("bench recon: \(engines), \(iterations) timed iterations per case, \(world.size) ranks, FFT planning \(fftPlanning.rawValue)")
                print("| engine | frames | size | ranks | s/iter | us/frame-iter (wall) | us/frame-iter (core) | FFT s/iter | ratio to FFT | ratio to DM | engine MB | data MB | memory ratio | peak RSS MB |")
                print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
                for r in rows {
                    print(String(format: "| %@ | %d | %d | %d | %.4f | %.1f | %.1f | %.4f | %.2f | %@ | %.1f | %.1f | %.2f | %.1f |",
                                 r.label, r.frames, r.frameSize, r.ranks, r.secondsPerIteration, r.microsecondsPerFrameIteration,
                                 r.coreMicrosecondsPerFrameIteration, r.fftSecondsPerIteration, r.ratioToFFT,
                                 r.ratioToDM.map { String(format: "%.2f", $0) } ?? "-",
                                 r.engineMegabytes, r.dataMegabytes, r.memoryRatio, r.peakResidentMegabytes))
                }
                if rows.contains(where: { $0.efficiency != nil }) {
                    print("")
                    print("strong scaling against ranks alone (each in turn, its iterations taken in turns with the N-rank ones; their mean):")
                    print("| engine | frames | size | ranks | ranks timed alone | 1-rank s/iter | fastest | slowest | efficiency | FFT-normalized efficiency | FFT-only efficiency |")
                    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
                    for r in rows {
                        guard let one = r.oneRankSecondsPerIteration, let e = r.efficiency, let f = r.fftNormalizedEfficiency,
                              let k = r.ranksTimedAlone, let fast = r.oneRankFastestSecondsPerIteration,
                              let slow = r.oneRankSlowestSecondsPerIteration, let t = r.fftEfficiency else { continue }
                        print(String(format: "| %@ | %d | %d | %d | %d | %.4f | %.4f | %.4f | %.1f%% | %.1f%% | %.1f%% |", r.label, r.frames, r.frameSize,
                                     r.ranks, k, one, fast, slow, 100 * e, 100 * f, 100 * t))
                    }
                }
                if rows.contains(where: { $0.sections != nil }) {
                    print("")
                    print("ms per iteration in each part (busiest rank), beside the FFT-only time:")
                    print("| engine | frames | size | ranks | FFT only | transforms | reflection | projection | exit update | object update | probe update | rest over FFT only |")
                    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
                    for r in rows {
                        guard let s = r.sections else { continue }
                        let rest = s.reflection + s.projection + s.exitUpdate + s.objectUpdate + s.probeUpdate
                        print(String(format: "| %@ | %d | %d | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f |",
                                     r.label, r.frames, r.frameSize, r.ranks, 1e3 * r.fftSecondsPerIteration, 1e3 * s.transforms,
                                     1e3 * s.reflection, 1e3 * s.projection, 1e3 * s.exitUpdate, 1e3 * s.objectUpdate,
                                     1e3 * s.probeUpdate, rest / r.fftSecondsPerIteration))
                    }
                }
            }
        }
    }

    struct PreprocessBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "preprocess",
            abstract: "Raw fast-CCD frames cleaned per second (default 1024x1024 to 256x256) beside the downsampling FFTs alone.")

        @Option(help: "Detector side in pixels.")
        var detector = 1024
        @Option(help: "Output frame size.")
        var outputSize = 256
        @Option(help: "Frames cleaned per rank.")
        var frames = 32
        @Flag(help: "Search every frame's readout spectrum for interference lines (the cleaning's --search-every-frame).")
        var searchEveryFrame = false
        @Flag(help: "Print JSON instead of a table.")
        var json = false

        func validate() throws {
            guard detector >= 32, detector % 16 == 0 else { throw ValidationError("--detector must be a multiple of 16, at least 32") }
            guard outputSize >= 2, outputSize <= detector else { throw ValidationError("--output-size must be in 2...\(detector)") }
            guard frames > 0 else { throw ValidationError("--frames must be positive") }
        }

        func run() throws {
            try withMPI { world in
                let row = try PreprocessBenchmark.run(world, detector: detector, outputSize: outputSize, frames: frames,
                                                       searchEveryFrame: searchEveryFrame)
                guard world.rank == 0 else { return }
                if json { print(try jsonLine(row)); return }
                print("bench preprocess: \(detector)x\(detector) raw frames (16 channels + overscan) to \(outputSize)x\(outputSize), \(frames) frames per rank")
                print("| ranks | frames/s | FFT-only frames/s | ratio to FFT | full 2-D FFT frames/s | ratio to full FFT |")
                print("| ---: | ---: | ---: | ---: | ---: | ---: |")
                print(String(format: "| %d | %.1f | %.1f | %.2f | %.1f | %.2f |", row.ranks, row.framesPerSecond, row.fftFramesPerSecond,
                             row.ratioToFFT, row.fullFFTFramesPerSecond, row.ratioToFullFFT))
                print("")
                print("| step | ms per frame |")
                print("| --- | ---: |")
                for (name, seconds) in row.steps.sorted(by: { $0.value > $1.value }) { print(String(format: "| %@ | %.2f |", name, seconds * 1e3)) }
                print("")
                print("readout spectrum searched in \(row.searchedFrames) of \(row.framesPerRank * row.ranks) frames (the rest: the darks' lines explained the overscan)")
            }
        }
    }

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

extension FFTPlanning: ExpressibleByArgument {}
