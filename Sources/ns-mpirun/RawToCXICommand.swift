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

    @Flag(help: "Do not subtract the dark mean.")
    var noDark = false
    @Option(help: "Order of the per-channel overscan fit along the readout (0: off).")
    var overscanOrder = 2
    @Flag(help: "Do not remove readout interference lines.")
    var noSpikes = false
    @Option(help: "Interference line threshold, times the median magnitude of the band.")
    var spikeThreshold = 5.0
    @Option(help: "Background pixels lie within this many noise deviations of zero.")
    var backgroundSigma = 3.0
    @Option(help: "Photons below this are set to zero.")
    var photonThreshold = 0.5
    @Option(help: "Dark outliers beyond this many noise deviations are masked.")
    var badPixelThreshold = 5.0
    @Option(help: "ADU per photon (default: the file's).")
    var gain: Double?
    @Option(help: "Diffraction centre y,x in image pixels (default: centre of mass of bright frames).")
    var centre: String?
    @Option(help: "Beamstop radius in image pixels around the centre (default: none).")
    var beamstopRadius: Double?
    @Option(help: "Beamstop intensity transmission, divided out (0 masks it).")
    var beamstopTransmission = 0.0
    @Option(help: "Measured beamstop transmission map (PNG, or HDF5 as FILE:/dataset) of the detector image's size; 0 masks.")
    var beamstopMap: String?
    @Option(help: "Square crop around the centre in pixels (default: the detector's smaller side).")
    var crop: Int?
    @Option(help: "Output frame size after FFT downsampling (default: the crop).")
    var outputSize: Int?
    @Option(help: "Gaussian taper of the downsampling, sigma as a fraction of the output Nyquist (default: sharp).")
    var downsampleSigma: Double?
    @Option(help: "Defocus in m for the probe estimate's phase (0: flat).")
    var probeDefocus = 0.0
    @Flag(help: "Print only errors and warnings.")
    var quiet = false

    var preprocess: PreprocessOptions {
        get throws {
            var o = PreprocessOptions()
            o.subtractDark = !noDark
            o.overscanOrder = overscanOrder
            o.removeSpikes = !noSpikes
            o.spikeThreshold = spikeThreshold
            o.backgroundSigma = backgroundSigma
            o.photonThreshold = photonThreshold
            o.badPixelThreshold = badPixelThreshold
            o.gain = gain
            if let centre {
                let p = centre.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
                guard p.count == 2 else { throw ValidationError("--centre must look like 512.5,480, got '\(centre)'") }
                o.centre = p
            }
            o.beamstopRadius = beamstopRadius
            o.beamstopTransmission = beamstopTransmission
            o.cropSize = crop
            o.outputSize = outputSize
            o.downsampleSigma = downsampleSigma
            return o
        }
    }

    func validate() throws {
        let problems = try preprocess.problems()
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "\n")) }
    }

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
