import ArgumentParser
import Foundation
import Pipeline
import PipelineRuntime

/// The cleaning steps' options, shared by `raw2cxi` and `stream`: each one
/// given overrides its key (in brackets) of the pipeline's stage.
struct PreprocessArguments: ParsableArguments {
    @Flag(help: "Do not subtract the dark mean. [subtract_dark]")
    var noDark = false
    @Option(help: "Order of the per-channel overscan fit along the readout (0: off). [overscan_order]")
    var overscanOrder: Int?
    @Flag(help: "Do not remove readout interference lines. [remove_spikes]")
    var noSpikes = false
    @Flag(help: "Search every frame's readout spectrum for interference lines, even where the dark frames' lines explain its overscan. [search_every_frame]")
    var searchEveryFrame = false
    @Option(help: "Interference line threshold, times the median magnitude of the band. [spike_threshold]")
    var spikeThreshold: Double?
    @Option(help: "Background pixels lie within this many noise deviations of zero. [background_sigma]")
    var backgroundSigma: Double?
    @Option(help: "Photons below this are set to zero. [photon_threshold]")
    var photonThreshold: Double?
    @Option(help: "Dark outliers beyond this many noise deviations are masked. [bad_pixel_threshold]")
    var badPixelThreshold: Double?
    @Option(help: "ADU per photon (0: the file's). [gain]")
    var gain: Double?
    @Option(help: "Diffraction centre y,x in image pixels (\"\": centre of mass of bright frames). [centre]")
    var centre: String?
    @Option(help: "Beamstop radius in image pixels around the centre (0: none). [beamstop_radius]")
    var beamstopRadius: Double?
    @Option(help: "Beamstop intensity transmission, divided out (0 masks it). [beamstop_transmission]")
    var beamstopTransmission: Double?
    @Option(help: "Square crop around the centre in pixels (0: the detector's smaller side). [crop]")
    var crop: Int?
    @Option(help: "Output frame size after FFT downsampling (0: the crop). [output_size]")
    var outputSize: Int?
    @Option(help: "Gaussian taper of the downsampling, sigma as a fraction of the output Nyquist (0: sharp). [downsample_sigma]")
    var downsampleSigma: Double?

    var overrides: [CommandParameters.Override] {
        var o: [CommandParameters.Override] = []
        if noDark { o.append(.init("subtract_dark", .boolean(false), option: "--no-dark")) }
        if let v = overscanOrder { o.append(.init("overscan_order", .integer(v), option: "--overscan-order")) }
        if noSpikes { o.append(.init("remove_spikes", .boolean(false), option: "--no-spikes")) }
        if searchEveryFrame { o.append(.init("search_every_frame", .boolean(true), option: "--search-every-frame")) }
        if let v = spikeThreshold { o.append(.init("spike_threshold", .number(v), option: "--spike-threshold")) }
        if let v = backgroundSigma { o.append(.init("background_sigma", .number(v), option: "--background-sigma")) }
        if let v = photonThreshold { o.append(.init("photon_threshold", .number(v), option: "--photon-threshold")) }
        if let v = badPixelThreshold { o.append(.init("bad_pixel_threshold", .number(v), option: "--bad-pixel-threshold")) }
        if let v = gain { o.append(.init("gain", .number(v), option: "--gain")) }
        if let v = centre { o.append(.init("centre", .string(v), option: "--centre")) }
        if let v = beamstopRadius { o.append(.init("beamstop_radius", .number(v), option: "--beamstop-radius")) }
        if let v = beamstopTransmission { o.append(.init("beamstop_transmission", .number(v), option: "--beamstop-transmission")) }
        if let v = crop { o.append(.init("crop", .integer(v), option: "--crop")) }
        if let v = outputSize { o.append(.init("output_size", .integer(v), option: "--output-size")) }
        if let v = downsampleSigma { o.append(.init("downsample_sigma", .number(v), option: "--downsample-sigma")) }
        return o
    }
}

/// Which pipeline file gives a command its settings, and single keys set on the command line.
struct PipelineArguments: ParsableArguments {
    @Option(help: "Pipeline file (or a shipped pipeline's name) whose stage of this command's type gives the settings (default: the shipped one named like the command).")
    var pipeline: String?
    @Option(name: .customLong("set"), help: ArgumentHelp("Set one key of the pipeline, e.g. stages.clean.crop=512 (repeatable; options above win).", valueName: "key.path=value"))
    var settings: [String] = []
    @Flag(help: "Print every setting and where it came from (command line, file, declared default), then stop.")
    var showParameters = false

    /// With --show-parameters, prints the table (from the launcher's rank 0
    /// only, like usage and errors) and says the command is done.
    func showIfAsked(_ parameters: CommandParameters) -> Bool {
        guard showParameters else { return false }
        if (NSMPIRun.launcherRank() ?? 0) == 0 { print(parameters.text, terminator: "") }
        return true
    }
}

/// A pipeline problem as the command's error: every issue, each naming the
/// file and key path, then exit status 1 (the same on every rank).
func resolveParameters(_ type: String, _ pipeline: PipelineArguments, _ overrides: [CommandParameters.Override]) throws -> CommandParameters {
    do {
        return try ShippedPipelines.resolve(stageType: type, pipeline: pipeline.pipeline, overrides: overrides, settings: pipeline.settings)
    } catch let error as PipelineValidationError {
        throw ValidationError(error.description)
    }
}
