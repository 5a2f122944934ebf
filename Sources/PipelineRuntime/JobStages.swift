import Engines
import Foundation
import Ingest
import Parameters
import Pipeline
import Preprocessing
import Recon
import Reconstruction
import SafeOutput
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
        ] + PreprocessParameters.specs + RawToCXIJob.Options.jobSpecs)

    let input: String
    let output: String
    var options: RawToCXIJob.Options
    let context: StageContext

    public init(parameters p: ParameterSet, context: StageContext) throws {
        self.context = context
        input = p.string("input")
        output = context.resolve(p.string("output"))
        do {
            options = try RawToCXIJob.Options(parameters: p)
        } catch {
            throw StageError(stage: context.name, problem: error.description)
        }
        options.command = "pipeline stage \(context.name) (raw2cxi)"
    }

    public static func problems(_ p: ParameterSet, in pipeline: PipelineSpec) -> [String] {
        do { _ = try RawToCXIJob.Options(parameters: p); return [] } catch { return error.problems }
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
        inputs: [PortSpec("scan", .cxiScan, optional: true, doc: "the clean scan's path (unconnected: the 'input' parameter)")],
        outputs: [],
        parameters: [
            ParameterSpec("input", .string, default: .string(""),
                          doc: "the scan to reconstruct when no stage feeds 'scan' (relative: to the working directory)"),
            ParameterSpec("output", .string, default: .string("recon.cxi"), doc: "the reconstruction (relative: under the output directory)"),
        ] + EngineOptions.parameters + ReconstructionJob.Options.jobSpecs)

    let output: String
    let options: ReconstructionJob.Options
    let context: StageContext
    let input: String
    private var scan: String?

    public init(parameters p: ParameterSet, context: StageContext) throws {
        self.context = context
        input = p.string("input")
        output = context.resolve(p.string("output"))
        do {
            options = try ReconstructionJob.Options(parameters: p)
        } catch {
            throw StageError(stage: context.name, problem: error.description)
        }
    }

    public static func problems(_ p: ParameterSet, in pipeline: PipelineSpec) -> [String] {
        do { _ = try ReconstructionJob.Options(parameters: p); return [] } catch { return error.problems }
    }

    public func process(_ item: StageItem, emit: (StageItem) throws -> Void) throws {
        scan = try item.value(as: String.self)
    }

    public func flush(emit: (StageItem) throws -> Void) throws {
        guard let scan = scan ?? (input.isEmpty ? nil : input) else {
            throw StageError(stage: context.name, problem: "no scan arrived on 'scan', and no 'input' is set")
        }
        do { try FileIdentity.refuse(output: output, role: "the output", sameAs: [(role: "the scan", path: scan)]) } catch {
            throw StageError(stage: context.name, problem: "\(error)")
        }
        let job = try ReconstructionJob(input: scan, comm: try context.communicator(), options: options)
        if let w = job.probeWarning, context.groupRank == 0 {
            FileHandle.standardError.write(Data("stage '\(context.name)': warning: \(w)\n".utf8))
        }
        try job.run { _, _ in }
        try job.write(output, command: "pipeline stage \(context.name) (recon)", version: "")
    }

    public func reset() { scan = nil }
}
