import ArgumentParser
import Foundation
import Recon
import Preview
import Reconstruction

struct EngineArguments: ParsableArguments {
    @Option(help: "Algorithm: dm (difference map) or raar.")
    var algorithm: Algorithm = .dm
    @Option(help: "RAAR relaxation beta in (0, 1].")
    var beta = 0.75
    @Option(help: "Iterations.")
    var iterations = 100
    @Option(help: "First iteration (0-based) that updates the probe.")
    var probeStart = 2
    @Option(help: "Probe support radius as a fraction of the frame (default: none).")
    var probeSupport: Double?
    @Option(help: "Object regularization, a fraction of the largest illumination sum.")
    var objectRegularization = 1e-3
    @Option(help: "Probe regularization, a fraction of the largest object-intensity sum.")
    var probeRegularization = 1e-3
    @Option(help: "Frames transformed together.")
    var batch = 8
    @Option(help: ArgumentHelp("Power bound of the Fourier projection: poisson:K (K x the misfit Poisson noise leaves), relax:R (PtyPy's fourier_relax_factor) or none (exact, for noise-free data).", valueName: "bound"))
    var powerBound = PowerBound.poisson(1)
    @Option(help: "Model sub-pixel positions to 1/k pixel by shifting the probe (0: round positions to whole pixels).")
    var subpixel = EngineOptions().subpixelSteps
    @Option(help: "FFT planning: measure (fastest; FFTW may pick other algorithms from run to run, so results differ by rounding) or estimate (bit-identical results for identical runs).")
    var fftPlanning = EngineOptions().fftPlanning

    var options: EngineOptions {
        var o = EngineOptions()
        o.algorithm = algorithm
        o.beta = beta
        o.iterations = iterations
        o.probeUpdateStart = probeStart
        o.probeSupport = probeSupport
        o.objectRegularization = objectRegularization
        o.probeRegularization = probeRegularization
        o.batch = batch
        o.powerBound = powerBound
        o.subpixelSteps = subpixel
        o.fftPlanning = fftPlanning
        return o
    }
}

extension Algorithm: ExpressibleByArgument {}
extension FFTPlanning: ExpressibleByArgument {}

extension PowerBound: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
    public var defaultValueDescription: String { description }
}

struct ReconCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recon",
        abstract: "Reconstruct object and probe from a CXI scan with difference map or RAAR, the scan split into tiles over the ranks.")

    @Argument(help: "The CXI scan.")
    var input: String
    @Option(name: .shortAndLong, help: "The CXI file to write.")
    var output = "recon.cxi"
    @OptionGroup(title: "Engine") var engine: EngineArguments
    @OptionGroup(title: "Translation convention") var convention: ConventionOptions
    @Option(help: "Tile grid RxC over the ranks (default: as square as the object allows).")
    var tiles: String?
    @Flag(help: "Ignore the file's illumination; start from the mean diffraction pattern.")
    var ignoreFileProbe = false
    @Option(help: "Defocus in m for the data-derived first probe's phase (0: flat).")
    var probeDefocus = 0.0
    @Option(help: "Print a progress line every k iterations.")
    var printEvery = 1
    @Option(help: "Compare with the simulation truth every k iterations (0: only at the end).")
    var truthEvery = 10
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

    func tileGrid() throws -> (rows: Int, columns: Int)? { try parseTileGrid(tiles) }

    func validate() throws {
        let problems = engine.options.problems()
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "\n")) }
        _ = try tileGrid()
        guard printEvery > 0 else { throw ValidationError("--print-every must be positive, got \(printEvery)") }
        guard previewEvery >= 0 else { throw ValidationError("--preview-every must be at least 0, got \(previewEvery)") }
        guard checkpointEvery >= 0 else { throw ValidationError("--checkpoint-every must be at least 0, got \(checkpointEvery)") }
        if checkpointEvery > 0 && checkpoint == nil { throw ValidationError("--checkpoint-every needs --checkpoint FILE") }
    }

    func run() throws {
        var options = ReconstructionJob.Options()
        options.engine = engine.options
        options.convention = convention.convention
        options.tiles = try tileGrid()
        options.useFileProbe = !ignoreFileProbe
        options.probeDefocus = probeDefocus
        options.truthEvery = truthEvery
        var stopped = false
        try withMPI { world in
            // After MPI starts: MPICH installs its own SIGUSR1 handler in MPI_Init.
            if checkpoint != nil { StopSignal.install() }
            let log = try ProgressLog(path: world.rank == 0 ? logFile : nil, quiet: quiet || world.rank != 0)
            let job = try ReconstructionJob(input: input, comm: world, options: options)
            // Made on every rank so a bad folder stops them all alike.
            let previews = try preview.map { try PreviewWriter(directory: $0) }
            let l = job.layout
            log.line("recon: \(job.scan.frames) frames of \(job.geometry.frameSize)x\(job.geometry.frameSize), object \(l.objectHeight)x\(l.objectWidth) at \(String(format: "%.2f", job.grid.pixelSize * 1e9)) nm, \(options.engine.algorithm.rawValue) on \(world.size) ranks as \(l.rows)x\(l.columns) tiles")
            if let resume {
                try Checkpoint.resume(job, from: resume)
                log.line("recon: resumed from \(resume) after iteration \(job.engine.iteration)")
            }
            let started = Date(), first = job.engine.iteration
            let total = options.engine.iterations
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
                    try Checkpoint.write(job, to: checkpoint)
                    log.line("recon: checkpoint after iteration \(i) in \(checkpoint)")
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

/// `--tiles RxC`, shared by the commands that tile a scan.
func parseTileGrid(_ tiles: String?) throws -> (rows: Int, columns: Int)? {
    guard let tiles else { return nil }
    let parts = tiles.lowercased().split(separator: "x").compactMap { Int($0) }
    guard parts.count == 2, parts[0] > 0, parts[1] > 0 else {
        throw ValidationError("--tiles must look like 2x3, got '\(tiles)'")
    }
    return (parts[0], parts[1])
}

/// Progress lines on standard output and, optionally, appended to a file.
final class ProgressLog {
    private let handle: FileHandle?
    private let quiet: Bool

    init(path: String?, quiet: Bool) throws {
        self.quiet = quiet
        if let path {
            if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
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
