import ArgumentParser
import Foundation
import Ingest
import Preprocessing

struct RawToCXI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raw2cxi",
        abstract: "Clean raw fast-CCD frames into a CXI scan: darks, offsets, interference, photons, beamstop, crop, downsampling.",
        discussion: """
            Dark frames and data frames are split across the ranks; the dark statistics are merged over \
            all ranks, and clean frames are written collectively, with the mask, the diffraction centre, \
            STXM and differential phase contrast images, and a probe estimate from the mean pattern.
            """)

    @Argument(help: "The raw CXI scan (uint16 frames with ns_readout).")
    var input: String
    @Option(name: .shortAndLong, help: "The clean CXI file to write.")
    var output = "clean.cxi"

    @OptionGroup(title: "Preprocessing") var cleaning: PreprocessArguments
    @Option(help: "Measured beamstop transmission map (PNG, or HDF5 as FILE:/dataset) of the detector image's size; 0 masks.")
    var beamstopMap: String?
    @Option(help: "Defocus in m for the probe estimate's phase (0: flat).")
    var probeDefocus = 0.0
    @Flag(help: "Print only errors and warnings.")
    var quiet = false

    var preprocess: PreprocessOptions { get throws { try cleaning.options } }

    func run() throws {
        var options = RawToCXIJob.Options()
        options.preprocess = try preprocess
        options.probeDefocus = probeDefocus
        options.beamstopMap = beamstopMap
        options.command = CommandLine.arguments.joined(separator: " ")
        options.version = NanosurveyorVersion.string
        try withMPI { world in
            let summary = try RawToCXIJob.run(input: input, output: output, comm: world, options: options)
            guard world.rank == 0 else { return }
            for w in summary.warnings { FileHandle.standardError.write(Data("raw2cxi: warning: \(w)\n".utf8)) }
            if !quiet {
                print(String(format: "raw2cxi: %d frames (%d darks) -> %dx%d clean frames, centre (%.2f, %.2f), %d masked pixels, %.2f s on %d ranks",
                             summary.frames, summary.darkFrames, summary.outputSize, summary.outputSize, summary.centre[0],
                             summary.centre[1], summary.maskedPixels, summary.seconds, world.size))
                print("raw2cxi: wrote \(output)")
            }
        }
    }
}
