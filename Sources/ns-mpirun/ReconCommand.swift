import ArgumentParser
import Engines
import Foundation
import Parameters
import Pipeline
import PipelineRuntime
import Recon
import Preview
import Reconstruction
import SafeOutput

/// The solver's options, shared by `recon` and `stream`: each one given
/// overrides its key (in brackets) of the pipeline's stage. Their help and
/// their checks come from the engines' declarations (`EngineOptions.parameters`);
/// `--engine-parameter` reaches every declared parameter, those of engines
/// added later included.
struct EngineArguments: ParsableArguments {
    @Option(help: declared("algorithm")) var algorithm: String?
    @Option(help: declared("beta")) var beta: Double?
    @Option(help: declared("iterations")) var iterations: Int?
    @Option(help: declared("engines", valueName: "name:iterations,...")) var engines: String?
    @Option(help: declared("probe_start")) var probeStart: Int?
    @Option(help: declared("probe_modes")) var probeModes: Int?
    @Option(help: declared("probe_support")) var probeSupport: Double?
    @Option(help: declared("object_regularization")) var objectRegularization: Double?
    @Option(help: declared("probe_regularization")) var probeRegularization: Double?
    @Option(help: declared("batch")) var batch: Int?
    @Option(help: declared("power_bound", valueName: "bound")) var powerBound: String?
    @Option(help: declared("subpixel")) var subpixel: Int?
    @Option(help: declared("fft_planning")) var fftPlanning: String?
    @Option(help: declared("fft_wisdom")) var fftWisdom: String?
    @Option(name: .customLong("engine-parameter"),
            help: ArgumentHelp("Set any engine parameter by its declared name, e.g. beta=0.9 (repeatable; the options above win; --show-parameters lists them).",
                               valueName: "name=value"))
    var engineParameters: [String] = []

    /// An option's help: the declaration's doc, its range or choices and default, and the key.
    static func declared(_ name: String, valueName: String? = nil) -> ArgumentHelp {
        guard let spec = EngineOptions.parameters.first(where: { $0.name == name }) else {
            preconditionFailure("no engine parameter is declared as \(name)")
        }
        var text = spec.doc.prefix(1).uppercased() + spec.doc.dropFirst()
        switch spec.kind {
        case .integer(let r?): text += ", \(r.lowerBound) to \(r.upperBound)"
        case .number(let r?): text += ", \(r.lowerBound) to \(r.upperBound)"
        case .choice(let c) where !c.allSatisfy(text.contains): text += ": " + c.joined(separator: ", ")
        default: break
        }
        if let d = spec.defaultValue, d != .string("") { text += " (declared default: \(d))" }
        return ArgumentHelp(text + ". [\(name)]", valueName: valueName)
    }

    var overrides: [CommandParameters.Override] { get throws {
        var o: [CommandParameters.Override] = []
        for setting in engineParameters {
            guard let eq = setting.firstIndex(of: "="), eq != setting.startIndex else {
                throw ValidationError("--engine-parameter \(setting): expected name=value")
            }
            let name = String(setting[..<eq]), text = String(setting[setting.index(after: eq)...])
            guard let spec = EngineOptions.parameters.first(where: { $0.name == name }) else {
                let near = nearest(name, in: EngineOptions.parameters.map(\.name)).map { " (did you mean '\($0)'?)" } ?? ""
                throw ValidationError("--engine-parameter \(setting): no engine parameter is named '\(name)'\(near); declared: \(EngineOptions.parameters.map(\.name).joined(separator: ", "))")
            }
            // Text for a string or choice is the string itself; the rest is JSON, checked against the declaration.
            let json: String
            switch spec.kind {
            case .string, .choice: json = ParameterValue.string(text).json
            default: json = text
            }
            o.append(.init(name, json: json, option: "--engine-parameter \(setting)"))
        }
        if let v = algorithm { o.append(.init("algorithm", .string(v), option: "--algorithm")) }
        if let v = beta { o.append(.init("beta", .number(v), option: "--beta")) }
        if let v = iterations { o.append(.init("iterations", .integer(v), option: "--iterations")) }
        if let v = engines { o.append(.init("engines", .string(v), option: "--engines")) }
        if let v = probeStart { o.append(.init("probe_start", .integer(v), option: "--probe-start")) }
        if let v = probeModes { o.append(.init("probe_modes", .integer(v), option: "--probe-modes")) }
        if let v = probeSupport { o.append(.init("probe_support", .number(v), option: "--probe-support")) }
        if let v = objectRegularization { o.append(.init("object_regularization", .number(v), option: "--object-regularization")) }
        if let v = probeRegularization { o.append(.init("probe_regularization", .number(v), option: "--probe-regularization")) }
        if let v = batch { o.append(.init("batch", .integer(v), option: "--batch")) }
        if let v = powerBound { o.append(.init("power_bound", .string(v), option: "--power-bound")) }
        if let v = subpixel { o.append(.init("subpixel", .integer(v), option: "--subpixel")) }
        if let v = fftPlanning { o.append(.init("fft_planning", .string(v), option: "--fft-planning")) }
        if let v = fftWisdom { o.append(.init("fft_wisdom", .string(v), option: "--fft-wisdom")) }
        return o
    } }
}

struct ReconCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recon",
        abstract: "Reconstruct object and probe from a CXI scan with any registered engine (difference map, RAAR, maximum likelihood, rPIE), the scan split into tiles over the ranks.")

    @Argument(help: "The CXI scan.")
    var input: String
    @Option(name: .shortAndLong, help: "The CXI file to write (default: the stage's output, under the pipeline's output directory when relative).")
    var output: String?
    @OptionGroup(title: "Engine") var engine: EngineArguments
    @OptionGroup(title: "Translation convention") var convention: ConventionOptions
    @Option(help: "Tile grid RxC over the ranks (\"\": as square as the object allows). [tiles]")
    var tiles: String?
    @Flag(help: "Ignore the file's illumination; start from the mean diffraction pattern. [use_file_probe]")
    var ignoreFileProbe = false
    @Option(help: "The first probe when the file offers none: 'optics' from the recorded zone plate and defocus (the mean pattern, with a warning, when the file records none), 'mean' the mean pattern with --probe-defocus's phase. [first_probe]")
    var firstProbe: String?
    @Option(help: "Defocus in m for the mean pattern's phase (0: flat). [probe_defocus]")
    var probeDefocus: Double?
    @Option(help: "Compare with the simulation truth every k iterations (0: only at the end). [truth_every]")
    var truthEvery: Int?
    @Option(help: "Memory the solve may take on each rank, in GB (0: 80% of the host's memory shared by its ranks); a larger scan is refused before anything is allocated. [max_memory_gb]")
    var maxMemoryGb: Double?
    @OptionGroup(title: "Pipeline") var pipeline: PipelineArguments
    @Option(help: "Print a progress line every k iterations.")
    var printEvery = 1
    @Flag(help: "No progress lines.")
    var quiet = false
    @Option(help: "Also append the progress lines to this file.")
    var logFile: String?
    @Option(help: "Write PNG previews (object amplitude and phase, probe, error curves) into this folder.")
    var preview: String?
    @Option(help: "Refresh the previews every k iterations (0: only at the end).")
    var previewEvery = 10
    @Flag(help: "Read the written file back and check every rank's tile and the probe against memory.")
    var verifyOutput = false
    @Option(help: "Checkpoint file (HDF5): written every --checkpoint-every iterations and on SIGUSR1, SIGUSR2 or SIGTERM.")
    var checkpoint: String?
    @Option(help: "Write the checkpoint every k iterations (0: only on a signal).")
    var checkpointEvery = 0
    @Option(help: "Continue from this checkpoint, on any rank count whose tiles fit.")
    var resume: String?

    var overrides: [CommandParameters.Override] { get throws {
        var o = try engine.overrides
        o.append(.init("input", .string(input), option: "INPUT"))
        if let v = tiles { o.append(.init("tiles", .string(v), option: "--tiles")) }
        if ignoreFileProbe { o.append(.init("use_file_probe", .boolean(false), option: "--ignore-file-probe")) }
        if let v = firstProbe { o.append(.init("first_probe", .string(v), option: "--first-probe")) }
        if let v = probeDefocus { o.append(.init("probe_defocus", .number(v), option: "--probe-defocus")) }
        if let v = truthEvery { o.append(.init("truth_every", .integer(v), option: "--truth-every")) }
        if let v = maxMemoryGb { o.append(.init("max_memory_gb", .number(v), option: "--max-memory-gb")) }
        if let v = output { o.append(.init("output", .string(v), option: "--output")) }
        return o
    } }

    /// The job's options and the file to write, from the pipeline and the options given.
    func resolved() throws -> (options: ReconstructionJob.Options, output: String, parameters: CommandParameters) {
        let p = try resolveParameters("recon", pipeline, try overrides)
        var options: ReconstructionJob.Options
        do { options = try ReconstructionJob.Options(parameters: p.parameters) } catch { throw ValidationError("\(p.spec.file): \(error)") }
        options.convention = convention.convention
        // An explicit -o is taken as written; the stage's own output lives under the pipeline's folder.
        let path = output ?? (p.spec.outputDirectory as NSString).appendingPathComponent(p.parameters.string("output"))
        return (options, path, p)
    }

    func validate() throws {
        _ = try resolved()
        guard printEvery > 0 else { throw ValidationError("--print-every must be positive, got \(printEvery)") }
        guard previewEvery >= 0 else { throw ValidationError("--preview-every must be at least 0, got \(previewEvery)") }
        guard checkpointEvery >= 0 else { throw ValidationError("--checkpoint-every must be at least 0, got \(checkpointEvery)") }
        if checkpointEvery > 0 && checkpoint == nil { throw ValidationError("--checkpoint-every needs --checkpoint FILE") }
    }

    func run() throws {
        let (options, output, parameters) = try resolved()
        if pipeline.showIfAsked(parameters) { return }
        var stopped = false
        // Before any work: an output that is an input would be destroyed.
        var inputs = [(role: "the scan", path: input)]
        if let resume { inputs.append((role: "--resume", path: resume)) }
        try FileIdentity.refuse(output: output, role: "the output", sameAs: inputs + (checkpoint.map { [(role: "--checkpoint", path: $0)] } ?? []))
        if let checkpoint { try FileIdentity.refuse(output: checkpoint, role: "--checkpoint", sameAs: [(role: "the scan", path: input)]) }
        try withMPI { world in
            if world.rank == 0 {
                let folder = (output as NSString).deletingLastPathComponent
                if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            }
            // After MPI starts: MPICH installs its own SIGUSR1 handler in MPI_Init.
            if checkpoint != nil { StopSignal.install() }
            let log = try ProgressLog(path: world.rank == 0 ? logFile : nil, quiet: quiet || world.rank != 0)
            let job = try ReconstructionJob(input: input, comm: world, options: options)
            // Made on every rank so a bad folder stops them all alike.
            let previews = try preview.map { try PreviewWriter(directory: $0) }
            let l = job.layout
            log.line("recon: \(job.scan.frames) frames of \(job.geometry.frameSize)x\(job.geometry.frameSize), object \(l.objectHeight)x\(l.objectWidth) at \(String(format: "%.2f", job.grid.pixelSize * 1e9)) nm, \(EngineRun.text(options.engine.sequence)) on \(world.size) ranks as \(l.rows)x\(l.columns) tiles")
            log.line("recon: first probe from \(job.probeOrigin)")
            if let w = job.probeWarning, world.rank == 0 { log.warning("recon: warning: \(w)") }
            if let resume {
                try Checkpoint.resume(job, from: resume)
                log.line("recon: resumed from \(resume) after iteration \(job.engine.iteration)")
            }
            let started = Date(), first = job.engine.iteration
            let total = options.engine.totalIterations
            try job.run { stats, nrmse in
                let i = stats.iteration + 1
                guard i % printEvery == 0 || i == total else { return }
                let elapsed = Date().timeIntervalSince(started)
                let eta = elapsed / Double(max(1, i - first)) * Double(total - i)
                var text = String(format: "iter %4d/%d  fourier %.4e", i, total, stats.fourierError)
                if let nrmse { text += String(format: "  nrmse %.4f", nrmse) }
                text += String(format: "  %.3f s/it  ETA %.0f s", stats.seconds, eta)
                log.line(text)
            } after: { stats in
                let i = stats.iteration + 1
                if let previews, previewEvery > 0, i % previewEvery == 0, i < total { try job.writePreview(previews) }
                guard let checkpoint else { return true }
                // Every rank must agree to stop: one collective on the flag.
                let stop = try world.allreduce(StopSignal.requested ? 1 : 0, op: .max) > 0
                if stop || (checkpointEvery > 0 && (i % checkpointEvery == 0 || i == total)) {
                    // Hours of progress must not end for want of disk: warn, try again at the next interval.
                    do {
                        try Checkpoint.write(job, to: checkpoint)
                        log.line("recon: checkpoint after iteration \(i) in \(checkpoint)")
                    } catch {
                        if world.rank == 0 {
                            log.warning("recon: warning: no checkpoint after iteration \(i) (\(error)); the previous one, if any, is kept; trying again at the next")
                        }
                    }
                }
                if stop {
                    log.line("recon: stopped by a signal after iteration \(i); continue with --resume \(checkpoint)")
                    stopped = true
                }
                return !stop
            }
            if stopped { return }
            if let previews { try job.writePreview(previews) }
            try job.write(output, command: CommandLine.arguments.joined(separator: " "), version: NanosurveyorVersion.string)
            if verifyOutput {
                let differing = try job.verifyOutput(output)
                guard differing == 0 else {
                    throw ReconstructionError("\(output): \(differing) values read back differ from the reconstruction in memory")
                }
                log.line("recon: verified \(output): all \(world.size) tiles and the probe read back equal to memory")
            }
            if job.hasTruth {
                // Collective: every rank sends its tile, rank 0 compares.
                let object = try job.gatherObject()
                if let object, let c = try job.finalComparison(object: object) {
                    log.line(String(format: "recon: object NRMSE against the truth %.4f (after a shift of %.2f, %.2f px and a phase ramp)",
                                    c.nrmse, c.shiftY, c.shiftX))
                }
            }
            log.line("recon: wrote \(output)")
        }
        // A distinct status, so a batch script knows to requeue and resume.
        if stopped { throw ExitCode(3) }
    }
}

/// Progress lines on standard output and, optionally, appended to a file.
final class ProgressLog {
    private let handle: FileHandle?
    private let quiet: Bool

    init(path: String?, quiet: Bool) throws {
        self.quiet = quiet
        if let path {
            if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
            guard let h = FileHandle(forWritingAtPath: path) else { throw ValidationError("--log-file \(path) cannot be written") }
            h.seekToEndOfFile()
            handle = h
        } else {
            handle = nil
        }
    }

    func line(_ text: String) {
        if !quiet { print(text); fflush(nil) }
        handle?.write(Data((text + "\n").utf8))
    }

    /// On standard error even when quiet, and in the file.
    func warning(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
        handle?.write(Data((text + "\n").utf8))
    }
}

/// SIGUSR1 or SIGUSR2 (SLURM's warning before the time limit, as asked with
/// `--signal`) or SIGTERM asks the reconstruction to checkpoint and stop
/// after the current iteration. Under MPICH this replaces the SIGUSR1
/// handler its MPI_Init installs for failure notification.
enum StopSignal {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0

    static var requested: Bool { flag != 0 }

    static func install() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGUSR1, SIGUSR2, SIGTERM] {
            signal(s) { _ in StopSignal.flag = 1 }
            sigaddset(&set, s)
        }
        // A launcher may pass down a mask that blocks them.
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }
}
