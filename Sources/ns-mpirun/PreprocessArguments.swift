import ArgumentParser
import Foundation
import Ingest

/// The cleaning steps' settings, shared by `raw2cxi` and `stream`.
struct PreprocessArguments: ParsableArguments {
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
    @Option(help: "Square crop around the centre in pixels (default: the detector's smaller side).")
    var crop: Int?
    @Option(help: "Output frame size after FFT downsampling (default: the crop).")
    var outputSize: Int?
    @Option(help: "Gaussian taper of the downsampling, sigma as a fraction of the output Nyquist (default: sharp).")
    var downsampleSigma: Double?

    var options: PreprocessOptions {
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
        let problems = try options.problems()
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "\n")) }
    }
}
