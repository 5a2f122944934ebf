import Foundation

/// What preprocessing does to each raw frame; every step can be switched off.
public struct PreprocessOptions: Codable, Equatable, Sendable {
    /// Subtract the per-pixel dark mean (when dark frames exist).
    public var subtractDark = true
    /// Per channel, fit a polynomial of this order to the overscan along the
    /// readout sequence and subtract it (0: off).
    public var overscanOrder = 2
    /// Remove narrow readout interference lines found in the background.
    public var removeSpikes = true
    /// Search every frame's readout spectrum for lines, even where the dark
    /// frames' lines explain its overscan (for interference that comes and
    /// goes between frames; slower: see `bench preprocess`).
    public var searchEveryFrame = false
    /// A line is a spectral bin this many times the band's median magnitude
    /// (the noise there is Rayleigh-distributed: 5 is 5.9 sigma).
    public var spikeThreshold = 5.0
    /// Lines are searched above this fraction of the readout's Nyquist frequency.
    public var spikeBand = 0.25
    /// At most this many lines per channel, strongest first.
    public var maxSpikesPerChannel = 8
    /// Pixels within this many noise deviations of zero (after dark and
    /// offset) are background for the interference fit.
    public var backgroundSigma = 3.0
    /// Photons below this are set to zero: 0.5 keeps every pixel nearer one
    /// photon than none.
    public var photonThreshold = 0.5
    /// Dark-frame outliers (deviation or level) beyond this many channel noise deviations are masked.
    public var badPixelThreshold = 5.0
    /// ADU per photon (nil: the file's).
    public var gain: Double? = nil
    /// Diffraction centre (y, x) in image pixels (nil: centre of mass of bright frames).
    public var centre: [Double]? = nil
    /// A centred disc of this radius in image pixels attenuates by `beamstopTransmission`
    /// (divided out; 0 masks it as shadowed).
    public var beamstopRadius: Double? = nil
    public var beamstopTransmission = 0.0
    /// Square crop around the centre, then FFT downsampling to `outputSize` (nil: no crop, no downsampling).
    public var cropSize: Int? = nil
    public var outputSize: Int? = nil
    /// Gaussian taper of the kept spectrum, sigma as a fraction of the output's Nyquist frequency (nil: sharp cut).
    public var downsampleSigma: Double? = nil

    public init() {}

    public func problems() -> [String] {
        var out: [String] = []
        if !(0...3).contains(overscanOrder) { out.append("overscan order must be 0 (off) to 3, got \(overscanOrder)") }
        if !(spikeThreshold > 1) { out.append("spike threshold must be above 1, got \(spikeThreshold)") }
        if !(spikeBand >= 0 && spikeBand < 1) { out.append("spike band must be in [0, 1), got \(spikeBand)") }
        if !(photonThreshold >= 0) { out.append("photon threshold must be at least 0, got \(photonThreshold)") }
        if let g = gain, !(g > 0) { out.append("gain must be positive ADU per photon, got \(g)") }
        if let c = centre, c.count != 2 { out.append("centre must be two numbers (y, x)") }
        if let r = beamstopRadius, !(r >= 0) { out.append("beamstop radius must be at least 0 pixels") }
        if !(beamstopTransmission >= 0 && beamstopTransmission <= 1) { out.append("beamstop transmission must be in [0, 1]") }
        if let c = cropSize, c < 2 { out.append("crop size must be at least 2 pixels, got \(c)") }
        if let o = outputSize, o < 2 { out.append("output size must be at least 2 pixels, got \(o)") }
        if let o = outputSize, let c = cropSize, o > c { out.append("output size \(o) is larger than the crop \(c)") }
        if let s = downsampleSigma, !(s > 0) { out.append("downsampling sigma must be positive") }
        return out
    }
}

/// One cleaned frame and what the scan images need from it.
public struct CleanFrame: Sendable {
    /// Photons, outputSize^2, zero frequency at the centre pixel.
    public var photons: [Float]
    /// Photons on the whole detector (the transmission signal).
    public var total: Double
    /// Centre of mass (y, x) on the whole detector, image pixels.
    public var centreOfMass: (y: Double, x: Double)
    /// Non-finite input values, read as 0.
    public var nonFinite: Int
}
