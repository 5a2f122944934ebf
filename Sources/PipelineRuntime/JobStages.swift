import Foundation
import Ingest
import Pipeline
import Preprocessing
import Recon
import Reconstruction
import SwiftMPI

extension ItemKind {
    /// The path of a CXI scan of clean frames, written by one stage for the next.
    public static let cxiScan = ItemKind(rawValue: "cxi-scan")
}

extension StageContext {
    /// The stage group's MPI communicator (the runner's groups are communicators).
    func communicator() throws -> Communicator {
        guard let c = group as? Communicator else {
            throw StageError(stage: name, problem: "needs MPI: run it with `ns-mpirun run` under mpirun or srun")
        }
        return c
    }

    /// A path as given, or under the pipeline's output directory when relative.
    func resolve(_ path: String) -> String {
        path.hasPrefix("/") ? path : (outputDirectory as NSString).appendingPathComponent(path)
    }
}

/// `raw2cxi` as a stage: the whole raw scan cleaned on the stage's ranks
/// (darks merged over them, frames written collectively), then the clean
/// scan's path passed on.
public final class RawToCXIStage: SourceStage {
    public static let description = StageDescription(
        type: "raw2cxi",
        summary: "Cleans a raw fast-CCD scan into a CXI scan on the stage's ranks (the raw2cxi command's steps).",
        inputs: [],
        outputs: [PortSpec("scan", .cxiScan, doc: "the clean scan's path, once written")],
        parameters: [
            ParameterSpec("input", .string, default: nil, doc: "the raw CXI scan (relative: to the working directory)"),
            ParameterSpec("output", .string, default: .string("clean.cxi"), doc: "the clean scan (relative: under the output directory)"),
            ParameterSpec("subtract_dark", .boolean, default: .boolean(true), doc: "subtract the dark mean"),
            ParameterSpec("overscan_order", .integer(0...4), default: .integer(2), doc: "order of the per-channel overscan fit (0: off)"),
            ParameterSpec("remove_spikes", .boolean, default: .boolean(true), doc: "remove readout interference lines"),
            ParameterSpec("spike_threshold", .number(1...1000), default: .number(5), doc: "interference line threshold, times the band's median"),
            ParameterSpec("background_sigma", .number(0.1...100), default: .number(3), doc: "background within this many noise deviations"),
            ParameterSpec("photon_threshold", .number(0...100), unit: "photons", default: .number(0.5), doc: "photons below this are set to 0"),
            ParameterSpec("bad_pixel_threshold", .number(0.1...1000), default: .number(5), doc: "dark outliers beyond this many deviations are masked"),
            ParameterSpec("crop", .integer(0...65536), unit: "pixels", default: .integer(0), doc: "square crop around the centre (0: the detector's smaller side)"),
            ParameterSpec("output_size", .integer(0...65536), unit: "pixels", default: .integer(0), doc: "frame size after FFT downsampling (0: the crop)"),
            ParameterSpec("probe_defocus", .number(-1...1), unit: "m", default: .number(0), doc: "defocus for the probe estimate's phase (0: flat)"),
        ])

    let input: String
    let output: String
    let options: RawToCXIJob.Options
    let context: StageContext

    public init(parameters p: ParameterSet, context: StageContext) throws {
        self.context = context
        input = p.string("input")
        output = context.resolve(p.string("output"))
        var o = RawToCXIJob.Options()
        o.preprocess.subtractDark = p.boolean("subtract_dark")
        o.preprocess.overscanOrder = p.integer("overscan_order")
        o.preprocess.removeSpikes = p.boolean("remove_spikes")
        o.preprocess.spikeThreshold = p.number("spike_threshold")
        o.preprocess.backgroundSigma = p.number("background_sigma")
        o.preprocess.photonThreshold = p.number("photon_threshold")
        o.preprocess.badPixelThreshold = p.number("bad_pixel_threshold")
        o.preprocess.cropSize = p.integer("crop") == 0 ? nil : p.integer("crop")
        o.preprocess.outputSize = p.integer("output_size") == 0 ? nil : p.integer("output_size")
        o.probeDefocus = p.number("probe_defocus")
        o.command = "pipeline stage \(context.name) (raw2cxi)"
        let problems = o.preprocess.problems()
        guard problems.isEmpty else { throw StageError(stage: context.name, problem: problems.joined(separator: "; ")) }
        options = o
    }

    public func produce(emit: (StageItem) throws -> Void) throws {
        _ = try RawToCXIJob.run(input: input, output: output, comm: try context.communicator(), options: options)
        // One copy of the path: the runner hands a scan-wide item to every rank of each consumer.
        if context.groupRank == 0 { try emit(StageItem(port: "scan", index: -1, payload: output)) }
    }

    public func process(_ item: StageItem, emit: (StageItem) throws -> Void) throws {}
    public func flush(emit: (StageItem) throws -> Void) throws {}
    public func reset() {}
}

/// `recon` as a stage: the scan it is given reconstructed on the stage's
/// ranks, tiled over them, and written collectively.
public final class ReconStage: Stage {
    public static let description = StageDescription(
        type: "recon",
        summary: "Reconstructs a clean CXI scan with DM or RAAR on the stage's ranks, the object tiled over them (the recon command).",
        inputs: [PortSpec("scan", .cxiScan, doc: "the clean scan's path")],
        outputs: [],
        parameters: [
            ParameterSpec("output", .string, default: .string("recon.cxi"), doc: "the reconstruction (relative: under the output directory)"),
            ParameterSpec("algorithm", .choice(["dm", "raar"]), default: .string("dm"), doc: "difference map or RAAR"),
            ParameterSpec("beta", .number(1e-6...1), default: .number(0.75), doc: "RAAR relaxation"),
            ParameterSpec("iterations", .integer(1...1_000_000), default: .integer(100), doc: "iterations"),
            ParameterSpec("probe_start", .integer(0...1_000_000), default: .integer(2), doc: "first iteration that updates the probe"),
            ParameterSpec("use_file_probe", .boolean, default: .boolean(true), doc: "start from the scan's probe estimate when it has one"),
            ParameterSpec("probe_defocus", .number(-1...1), unit: "m", default: .number(0), doc: "defocus for a data-derived first probe's phase"),
            ParameterSpec("fft_planning", .choice(["measure", "estimate"]), default: .string("measure"),
                          doc: "FFTW planning: measure (fastest) or estimate (bit-identical runs)"),
        ])

    let output: String
    let options: ReconstructionJob.Options
    let context: StageContext
    private var scan: String?

    public init(parameters p: ParameterSet, context: StageContext) throws {
        self.context = context
        output = context.resolve(p.string("output"))
        var o = ReconstructionJob.Options()
        o.engine.algorithm = p.string("algorithm") == "raar" ? .raar : .dm
        o.engine.beta = p.number("beta")
        o.engine.iterations = p.integer("iterations")
        o.engine.probeUpdateStart = p.integer("probe_start")
        o.engine.fftPlanning = p.string("fft_planning") == "estimate" ? .estimate : .measure
        o.useFileProbe = p.boolean("use_file_probe")
        o.probeDefocus = p.number("probe_defocus")
        let problems = o.engine.problems()
        guard problems.isEmpty else { throw StageError(stage: context.name, problem: problems.joined(separator: "; ")) }
        options = o
    }

    public func process(_ item: StageItem, emit: (StageItem) throws -> Void) throws {
        scan = try item.value(as: String.self)
    }

    public func flush(emit: (StageItem) throws -> Void) throws {
        guard let scan else { throw StageError(stage: context.name, problem: "no scan arrived on 'scan'") }
        let job = try ReconstructionJob(input: scan, comm: try context.communicator(), options: options)
        try job.run { _, _ in }
        try job.write(output, command: "pipeline stage \(context.name) (recon)", version: "")
    }

    public func reset() { scan = nil }
}
