/// Physical constants (CODATA 2018, exact SI values).
public enum PhysicalConstants {
    public static let planck = 6.626_070_15e-34          // J s
    public static let speedOfLight = 299_792_458.0       // m / s
    public static let electronVolt = 1.602_176_634e-19   // J

    /// Wavelength in m of a photon of energy `energy` in J.
    public static func wavelength(energy: Double) -> Double { planck * speedOfLight / energy }
}

/// Far-field ptychography geometry in SI units: the detector frame of
/// `frameSize` pixels of `detectorPixelSize` at `distance` maps to a
/// sample-plane window of pixels lambda * z / (N * dx).
public struct Geometry: Codable, Equatable, Sendable {
    /// Photon energy in J.
    public var energy: Double
    /// Sample-to-detector distance in m.
    public var distance: Double
    /// Detector pixel pitch in m (square pixels).
    public var detectorPixelSize: Double
    /// Frame size in pixels (square frames, after cropping/downsampling).
    public var frameSize: Int

    public init(energy: Double, distance: Double, detectorPixelSize: Double, frameSize: Int) {
        self.energy = energy
        self.distance = distance
        self.detectorPixelSize = detectorPixelSize
        self.frameSize = frameSize
    }

    public var wavelength: Double { PhysicalConstants.wavelength(energy: energy) }

    /// Sample-plane pixel size in m.
    public var samplePixelSize: Double {
        wavelength * distance / (Double(frameSize) * detectorPixelSize)
    }

    /// Problems with the values, each naming the field; empty when usable.
    public func problems() -> [String] {
        var out: [String] = []
        if !(energy.isFinite && energy > 0) { out.append("energy must be a positive number of joules, got \(energy)") }
        if !(distance.isFinite && distance > 0) { out.append("distance must be a positive number of metres, got \(distance)") }
        if !(detectorPixelSize.isFinite && detectorPixelSize > 0) {
            out.append("detector pixel size must be a positive number of metres, got \(detectorPixelSize)")
        }
        if frameSize < 2 { out.append("frame size must be at least 2 pixels, got \(frameSize)") }
        return out
    }
}
