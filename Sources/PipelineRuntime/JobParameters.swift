import Engines
import Foundation
import Ingest
import Parameters
import Pipeline
import Preprocessing
import Recon
import Reconstruction

// The parameters the job stages declare, and the job options they make.
// The commands (`raw2cxi`, `recon`, `stream`) resolve the same keys from
// their shipped pipeline file, so a stage and its command cannot drift.
// An option that may be absent is written as 0 or "" ("not given"), since
// a pipeline file has no null.

/// The cleaning steps' parameters, shared by `raw2cxi` and `stream`.
public enum PreprocessParameters {
    public static var specs: [ParameterSpec] {
        let d = PreprocessOptions()
        return [
            ParameterSpec("subtract_dark", .boolean, default: .boolean(d.subtractDark), doc: "subtract the dark mean (when dark frames exist)"),
            ParameterSpec("overscan_order", .integer(0...3), default: .integer(d.overscanOrder),
                          doc: "order of the per-channel overscan fit along the readout (0: off)"),
            ParameterSpec("remove_spikes", .boolean, default: .boolean(d.removeSpikes), doc: "remove readout interference lines"),
            ParameterSpec("search_every_frame", .boolean, default: .boolean(d.searchEveryFrame),
                          doc: "search every frame's readout spectrum for lines, even where the darks' lines explain its overscan"),
            ParameterSpec("spike_threshold", .number(1.01...1000), default: .number(d.spikeThreshold),
                          doc: "interference line threshold, times the band's median magnitude"),
            ParameterSpec("background_sigma", .number(0.1...100), default: .number(d.backgroundSigma),
                          doc: "background pixels lie within this many noise deviations of zero"),
            ParameterSpec("photon_threshold", .number(0...100), unit: "photons", default: .number(d.photonThreshold),
                          doc: "photons below this are set to zero"),
            ParameterSpec("bad_pixel_threshold", .number(0.1...1000), default: .number(d.badPixelThreshold),
                          doc: "dark outliers beyond this many noise deviations are masked"),
            ParameterSpec("gain", .number(0...1e6), unit: "ADU/photon", default: .number(0), doc: "ADU per photon (0: the scan's)"),
            ParameterSpec("centre", .string, unit: "pixels", default: .string(""),
                          doc: "diffraction centre \"y,x\" in image pixels (\"\": centre of mass of bright frames)"),
            ParameterSpec("beamstop_radius", .number(0...65536), unit: "pixels", default: .number(0),
                          doc: "beamstop radius around the centre (0: no beamstop)"),
            ParameterSpec("beamstop_transmission", .number(0...1), default: .number(d.beamstopTransmission),
                          doc: "beamstop intensity transmission, divided out (0 masks it)"),
            ParameterSpec("crop", .integer(0...65536), unit: "pixels", default: .integer(0),
                          doc: "square crop around the centre (0: the detector's smaller side)"),
            ParameterSpec("output_size", .integer(0...65536), unit: "pixels", default: .integer(0),
                          doc: "frame size after FFT downsampling (0: the crop)"),
            ParameterSpec("downsample_sigma", .number(0...100), default: .number(0),
                          doc: "Gaussian taper of the downsampling, sigma as a fraction of the output Nyquist (0: sharp cut)"),
        ]
    }

    /// The options, or every problem (naming its key) that the ranges alone cannot catch.
    public static func options(_ p: ParameterSet) throws(ParameterProblems) -> PreprocessOptions {
        var o = PreprocessOptions()
        o.subtractDark = p.boolean("subtract_dark")
        o.overscanOrder = p.integer("overscan_order")
        o.removeSpikes = p.boolean("remove_spikes")
        o.searchEveryFrame = p.boolean("search_every_frame")
        o.spikeThreshold = p.number("spike_threshold")
        o.backgroundSigma = p.number("background_sigma")
        o.photonThreshold = p.number("photon_threshold")
        o.badPixelThreshold = p.number("bad_pixel_threshold")
        o.gain = p.givenNumber("gain")
        var problems: [String] = []
        let centre = p.string("centre")
        if !centre.isEmpty {
            let parts = centre.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
            if parts.count == 2 { o.centre = parts } else { problems.append("centre: must look like \"512.5,480\", got \"\(centre)\"") }
        }
        o.beamstopRadius = p.givenNumber("beamstop_radius")
        o.beamstopTransmission = p.number("beamstop_transmission")
        o.cropSize = p.givenInteger("crop")
        o.outputSize = p.givenInteger("output_size")
        o.downsampleSigma = p.givenNumber("downsample_sigma")
        problems += o.problems()
        guard problems.isEmpty else { throw ParameterProblems(problems) }
        return o
    }
}

/// Where the first probe comes from, declared alike by every stage that makes one.
public enum FirstProbeParameters {
    public static func specs(_ subject: String, of scan: String) -> [ParameterSpec] {
        [
            ParameterSpec("first_probe", .choice(FirstProbeSource.allCases.map(\.rawValue)), default: .string(FirstProbeSource.optics.rawValue),
                          doc: "\(subject): 'optics' from the zone plate and defocus \(scan) records (the mean pattern, with a warning, when it records none), 'mean' the mean pattern with probe_defocus's phase"),
            ParameterSpec("probe_defocus", .number(-1...1), unit: "m", default: .number(0),
                          doc: "defocus for the mean pattern's phase (first_probe 'mean', or no optics; 0: flat)"),
        ]
    }

    public static func source(_ p: ParameterSet) -> FirstProbeSource { FirstProbeSource(rawValue: p.string("first_probe")) ?? .optics }
}

public enum SolveParameters {
    public static let maxMemory = ParameterSpec(
        "max_memory_gb", .number(0...1_000_000), unit: "GB", default: .number(0),
        doc: "memory the solve may take on each rank (0: 80% of the host's memory shared by its ranks); a larger scan is refused before anything is allocated")
}

extension RawToCXIJob.Options {
    /// Declared by the `raw2cxi` stage beside the cleaning steps.
    public static var jobSpecs: [ParameterSpec] {
        [
            ParameterSpec("beamstop_map", .string, default: .string(""),
                          doc: "measured beamstop transmission map (PNG, TIFF, or HDF5 as FILE:/dataset) of the detector image's size (\"\": none)"),
        ] + FirstProbeParameters.specs("the probe estimate", of: "the raw scan")
    }

    public init(parameters p: ParameterSet) throws(ParameterProblems) {
        self.init()
        preprocess = try PreprocessParameters.options(p)
        probeDefocus = p.number("probe_defocus")
        firstProbe = FirstProbeParameters.source(p)
        beamstopMap = p.givenString("beamstop_map")
    }
}

extension ReconstructionJob.Options {
    /// Declared by the `recon` stage beside the solver's.
    public static var jobSpecs: [ParameterSpec] {
        [
            ParameterSpec("use_file_probe", .boolean, default: .boolean(true), doc: "start from the scan's probe estimate when it has one"),
        ] + FirstProbeParameters.specs("the first probe when the file offers none (use_file_probe)", of: "the scan") + [
            ParameterSpec("tiles", .string, default: .string(""), doc: "tile grid \"RxC\" over the ranks (\"\": as square as the object allows)"),
            ParameterSpec("truth_every", .integer(0...1_000_000), default: .integer(10),
                          doc: "compare with the simulation truth every k iterations (0: only at the end)"),
            SolveParameters.maxMemory,
        ]
    }

    public init(parameters p: ParameterSet) throws(ParameterProblems) {
        self.init()
        engine = try EngineOptions(p)
        useFileProbe = p.boolean("use_file_probe")
        probeDefocus = p.number("probe_defocus")
        firstProbe = FirstProbeParameters.source(p)
        tiles = try p.tileGrid("tiles")
        truthEvery = p.integer("truth_every")
        maxMemoryGB = p.givenNumber("max_memory_gb")
    }
}
