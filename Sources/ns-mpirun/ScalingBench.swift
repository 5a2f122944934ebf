import ArgumentParser
import Benchmarks
import Foundation
import SafeOutput
import Preview

extension Bench {
    struct ScalingBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "scaling",
            abstract: "Strong and weak scaling of DM on 1, 2, 4, ... of the job's ranks in one run: s/iteration, efficiency, and bytes sent per rank per iteration beside the halo model and a whole-object allreduce.")

        @Option(help: "Rank counts, comma-separated (default: powers of two up to the job's size, and the size).")
        var sizes: String?
        @Option(help: "Frames of the strong-scaling scan.")
        var frames = 400
        @Option(help: "Frames per rank of the weak-scaling scans.")
        var framesPerRank = 200
        @Option(help: "Frame size in pixels.")
        var frameSize = 128
        @Option(help: "Timed iterations per point.")
        var iterations = 5
        @Option(help: "Frames per FFT batch.")
        var batch = 8
        @Option(help: "strong, weak or both.")
        var mode = "both"
        @Option(help: "Also write the rows as CSV to this file.")
        var csv: String?
        @Option(help: "Also draw the rows as a PNG plot into this file.")
        var plot: String?
        @Option(help: "Project the object sums' traffic to this scan size...")
        var projectFrames = 100_000
        @Option(help: "...on these rank counts (comma-separated; empty: no projection).")
        var projectRanks = "64,256,1024"
        @Flag(help: "Print JSON instead of tables.")
        var json = false

        func parsedSizes(ranks: Int) throws -> [Int] {
            guard let sizes else { return ScalingBenchmark.defaultSizes(ranks: ranks) }
            let list = sizes.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !list.isEmpty, list.allSatisfy({ $0 != nil && $0! > 0 }) else {
                throw ValidationError("--sizes must list positive rank counts like 1,2,4, got '\(sizes)'")
            }
            let values = list.map { $0! }
            if let over = values.first(where: { $0 > ranks }) {
                throw ValidationError("--sizes asks for \(over) ranks but the job has \(ranks)")
            }
            return values
        }

        func parsedModes() throws -> [ScalingBenchmark.Mode] {
            switch mode {
            case "both": return [.strong, .weak]
            case "strong": return [.strong]
            case "weak": return [.weak]
            default: throw ValidationError("--mode must be strong, weak or both, got '\(mode)'")
            }
        }

        func parsedProjectRanks() throws -> [Int] { try ScalingOutput.rankList(projectRanks, option: "--project-ranks") }

        func validate() throws {
            guard frames > 0, framesPerRank > 0, iterations > 0, batch > 0 else {
                throw ValidationError("--frames, --frames-per-rank, --iterations and --batch must be positive")
            }
            guard frameSize >= 64 else { throw ValidationError("--frame-size must be at least 64, got \(frameSize)") }
            _ = try parsedModes()
            let projected = try parsedProjectRanks()
            if let r = projected.first(where: { $0 > projectFrames }) {
                throw ValidationError("--project-ranks \(r) exceeds --project-frames \(projectFrames)")
            }
        }

        func run() throws {
            let modes = try parsedModes()
            let projectRanks = try parsedProjectRanks()
            try withMPI { world in
                var options = ScalingBenchmark.Options(sizes: try parsedSizes(ranks: world.size))
                options.strongFrames = frames
                options.weakFramesPerRank = framesPerRank
                options.frameSize = frameSize
                options.iterations = iterations
                options.batch = batch
                options.modes = modes
                if let over = options.sizes.first(where: { $0 > frames }), modes.contains(.strong) {
                    throw ValidationError("--sizes \(over) ranks exceed the \(frames) frames of the strong-scaling scan")
                }
                let rows = try ScalingBenchmark.run(world, options: options)
                guard world.rank == 0 else { return }
                let projections = try projectRanks.map {
                    try ScalingBenchmark.project(frames: projectFrames, frameSize: frameSize, ranks: $0)
                }
                try ScalingOutput.save(rows, csv: csv, plot: plot)
                if json {
                    print(try jsonLine(ScalingOutput.Report(rows: rows, projections: projections)))
                    return
                }
                print("bench scaling: DM, \(iterations) timed iterations per point, \(frameSize)x\(frameSize) frames, sub-communicators of a \(world.size)-rank job")
                print(ScalingOutput.tables(rows, projections: projections), terminator: "")
            }
        }
    }

    struct ScalingReport: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "scaling-report",
            abstract: "Merges scaling CSV files (e.g. one per job of a SLURM array) into one table, CSV and plot; efficiencies against the 1-rank rows.")

        @Argument(help: "CSV files written by 'bench scaling --csv'.")
        var files: [String]
        @Option(help: "Write the merged rows as CSV to this file.")
        var csv: String?
        @Option(help: "Draw the merged rows as a PNG plot into this file.")
        var plot: String?
        @Option(help: "Write the tables as Markdown to this file (default: standard output only).")
        var table: String?
        @Option(help: "Project the object sums' traffic to this scan size...")
        var projectFrames = 100_000
        @Option(help: "...on these rank counts (comma-separated; empty: no projection).")
        var projectRanks = "64,256,1024"

        func validate() throws {
            guard !files.isEmpty else { throw ValidationError("give at least one CSV file") }
        }

        func run() throws {
            var rows: [ScalingBenchmark.Row] = []
            for file in files {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw ValidationError("\(file): cannot be read")
                }
                for line in text.split(separator: "\n") where !line.isEmpty && line != Substring(ScalingBenchmark.Row.csvHeader) {
                    do { rows.append(try ScalingBenchmark.Row(csvLine: line)) } catch { throw ValidationError("\(file): \(error)") }
                }
            }
            guard !rows.isEmpty else { throw ValidationError("\(files.joined(separator: ", ")): no scaling rows") }
            rows.sort { ($0.mode.rawValue, $0.ranks) < ($1.mode.rawValue, $1.ranks) }
            rows = ScalingBenchmark.withEfficiencies(rows)
            try ScalingOutput.save(rows, csv: csv, plot: plot)
            let projections = try ScalingOutput.rankList(projectRanks, option: "--project-ranks").map {
                try ScalingBenchmark.project(frames: projectFrames, frameSize: rows[0].frameSize, ranks: $0)
            }
            let text = ScalingOutput.tables(rows, projections: projections)
            print(text, terminator: "")
            if let table {
                try PendingFile.write(Data(text.utf8), to: table)
            }
        }
    }
}

/// Tables, CSV and plot of scaling rows.
enum ScalingOutput {
    static func rankList(_ text: String, option: String) throws -> [Int] {
        let list = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard list.allSatisfy({ $0 != nil && $0! > 0 }) else {
            throw ValidationError("\(option) must list positive rank counts, got '\(text)'")
        }
        return list.map { $0! }
    }

    struct Report: Encodable {
        var rows: [ScalingBenchmark.Row]
        var projections: [ScalingBenchmark.Projection]
    }

    static func save(_ rows: [ScalingBenchmark.Row], csv: String?, plot: String?) throws {
        if let csv {
            let text = ([ScalingBenchmark.Row.csvHeader] + rows.map(\.csvLine)).joined(separator: "\n") + "\n"
            try PendingFile.write(Data(text.utf8), to: csv)
        }
        if let plot {
            func points(_ mode: ScalingBenchmark.Mode) -> [ScalingPlot.Point] {
                rows.filter { $0.mode == mode }.map {
                    ScalingPlot.Point(ranks: $0.ranks, efficiency: $0.efficiency, haloBytes: $0.haloBytesPerRank,
                                      modelHaloBytes: $0.modelHaloBytesPerRank, allreduceBytes: $0.allreduceBytesPerRank,
                                      oversubscribed: $0.oversubscribed)
                }
            }
            try ScalingPlot.render(strong: points(.strong), weak: points(.weak)).writePNG(plot)
        }
    }

    static func tables(_ rows: [ScalingBenchmark.Row], projections: [ScalingBenchmark.Projection]) -> String {
        func mb(_ b: Double) -> String { String(format: "%.3f", b / 1e6) }
        var out = "| mode | ranks | frames | object | tiles | s/iter | FFT s/iter | efficiency | FFT-normalized efficiency | halo MB/rank/iter (counted) | busiest rank | layout predicts | uniform model | reductions MB/rank/iter | whole-object allreduce MB/rank/iter | oversubscribed |\n"
        out += "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n"
        for r in rows {
            out += "| \(r.mode.rawValue) | \(r.ranks) | \(r.frames) | \(r.objectHeight)x\(r.objectWidth) | \(r.tiles) | "
            out += String(format: "%.4f | %.4f | ", r.secondsPerIteration, r.fftSecondsPerIteration)
            out += (r.efficiency.map { String(format: "%.1f%%", 100 * $0) } ?? "-") + " | "
            out += (r.fftNormalizedEfficiency.map { String(format: "%.1f%%", 100 * $0) } ?? "-") + " | "
            out += "\(mb(r.haloBytesPerRank)) | \(mb(r.haloBytesMaxRank)) | \(mb(r.layoutHaloBytesPerRank)) | \(mb(r.modelHaloBytesPerRank)) | "
            out += "\(mb(r.reductionBytesPerRank)) | \(mb(r.allreduceBytesPerRank)) | \(r.oversubscribed ? "yes" : "no") |\n"
        }
        guard !projections.isEmpty else { return out }
        out += "\nobject sums' traffic projected (no run; the layout the solver would use):\n"
        out += "| frames | size | ranks | object | tiles | halo MB/rank/iter (layout) | busiest rank | uniform model | whole-object allreduce MB/rank/iter | allreduce / halo |\n"
        out += "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        for p in projections {
            out += "| \(p.frames) | \(p.frameSize) | \(p.ranks) | \(p.objectHeight)x\(p.objectWidth) | \(p.tiles) | "
            out += "\(mb(p.layoutHaloBytesPerRank)) | \(mb(p.layoutHaloBytesMaxRank)) | \(mb(p.modelHaloBytesPerRank)) | \(mb(p.allreduceBytesPerRank)) | "
            out += String(format: "%.0f |\n", p.allreduceOverHalo)
        }
        return out
    }
}
