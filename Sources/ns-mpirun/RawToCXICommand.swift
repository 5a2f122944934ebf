import ArgumentParser
import Foundation
import Ingest
import Pipeline
import PipelineRuntime
import Preprocessing

struct RawToCXI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raw2cxi",
        abstract: "Clean raw fast-CCD frames into a CXI scan: darks, offsets, interference, photons, beamstop, crop, downsampling.",
        discussion: """
            Dark frames and data frames are split across the ranks; the dark statistics are merged over \
            all ranks, and clean frames are written collectively, with the mask, the diffraction centre, \
            STXM and differential phase contrast images, and a probe estimate from the mean pattern. \
            The settings come from the raw2cxi stage of the shipped pipeline pipelines/raw2cxi.json \
            (or --pipeline FILE); each option given overrides its key, named in brackets.
            """)

    @Argument(help: "The raw CXI scan (uint16 frames with ns_readout).")
    var input: String
    @Option(name: .shortAndLong, help: "The clean CXI file to write (default: the stage's output, under the pipeline's output directory when relative).")
    var output: String?

    @OptionGroup(title: "Preprocessing") var cleaning: PreprocessArguments
    @Option(help: "Measured beamstop transmission map (PNG, TIFF, or HDF5 as FILE:/dataset) of the detector image's size; 0 masks. [beamstop_map]")
    var beamstopMap: String?
    @Option(help: "The probe estimate: 'optics' from the zone plate and defocus the file records (the mean pattern, with a warning, when it records none), 'mean' the mean pattern with --probe-defocus's phase. [first_probe]")
    var firstProbe: String?
    @Option(help: "Defocus in m for the mean pattern's phase (0: flat). [probe_defocus]")
    var probeDefocus: Double?
    @OptionGroup(title: "Pipeline") var pipeline: PipelineArguments
    @Flag(help: "Print only errors and warnings.")
    var quiet = false

    var overrides: [CommandParameters.Override] {
        var o = cleaning.overrides
        o.append(.init("input", .string(input), option: "INPUT"))
        if let output { o.append(.init("output", .string(output), option: "--output")) }
        if let v = beamstopMap { o.append(.init("beamstop_map", .string(v), option: "--beamstop-map")) }
        if let v = firstProbe { o.append(.init("first_probe", .string(v), option: "--first-probe")) }
        if let v = probeDefocus { o.append(.init("probe_defocus", .number(v), option: "--probe-defocus")) }
        return o
    }

    /// The job's options and the file to write, from the pipeline and the options given.
    func resolved() throws -> (options: RawToCXIJob.Options, output: String, parameters: CommandParameters) {
        let p = try resolveParameters("raw2cxi", pipeline, overrides)
        var options: RawToCXIJob.Options
        do { options = try RawToCXIJob.Options(parameters: p.parameters) } catch { throw ValidationError("\(p.spec.file): \(error)") }
        options.command = CommandLine.arguments.joined(separator: " ")
        options.version = NanosurveyorVersion.string
        // An explicit -o is taken as written; the stage's own output lives under the pipeline's folder.
        let path = output ?? (p.spec.outputDirectory as NSString).appendingPathComponent(p.parameters.string("output"))
        return (options, path, p)
    }

    func validate() throws { _ = try resolved() }

    func run() throws {
        let (options, output, parameters) = try resolved()
        if pipeline.showIfAsked(parameters) { return }
        try withMPI { world in
            if world.rank == 0 {
                let folder = (output as NSString).deletingLastPathComponent
                if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            }
            try world.barrier()
            let summary = try RawToCXIJob.run(input: input, output: output, comm: world, options: options)
            guard world.rank == 0 else { return }
            for w in summary.warnings { FileHandle.standardError.write(Data("raw2cxi: warning: \(w)\n".utf8)) }
            if !quiet {
                print(String(format: "raw2cxi: %d frames (%d darks) -> %dx%d clean frames, centre (%.2f, %.2f), %d masked pixels, %.2f s on %d ranks",
                             summary.frames, summary.darkFrames, summary.outputSize, summary.outputSize, summary.centre[0],
                             summary.centre[1], summary.maskedPixels, summary.seconds, world.size))
                if options.preprocess.removeSpikes {
                    print("raw2cxi: readout spectrum searched for interference lines in \(summary.interferenceSearches) of \(summary.frames) frames (the rest: the darks' lines explained the overscan)")
                }
                print("raw2cxi: wrote \(output)")
            }
        }
    }
}
