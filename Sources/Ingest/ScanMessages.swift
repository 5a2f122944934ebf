import Foundation
import Recon

/// The JSON header of a `start` message: what the receiver needs before
/// the first frame (see docs/PROTOCOL.md).
public struct ScanStart: Codable, Equatable, Sendable {
    public var scanID: String
    /// Data frames the scan will send, and dark frames sent before them.
    public var frames: Int
    public var darks: Int
    public var shapeY: Int
    public var shapeX: Int
    public var dtype: String
    /// Photon energy in J, detector distance in m, pixel pitch in m.
    public var energy: Double
    public var distance: Double
    public var xPixelSize: Double
    public var yPixelSize: Double
    /// Probe positions [y, x] in m, one per data frame, when known up front.
    public var translations: [[Double]]?
    /// Raw fast-CCD frames: the readout layout and ADU per photon.
    public var readout: ReadoutLayout?
    public var gain: Double?
    /// The zone plate and defocus that make the illumination, when the sender knows them.
    public var optics: ZonePlate?

    enum CodingKeys: String, CodingKey {
        case scanID = "scan_id", frames, darks, shapeY = "shape_y", shapeX = "shape_x", dtype, energy, distance
        case xPixelSize = "x_pixel_size", yPixelSize = "y_pixel_size", translations, readout, gain, optics
    }

    public init(scanID: String, frames: Int, darks: Int, shapeY: Int, shapeX: Int, dtype: String, energy: Double,
                distance: Double, xPixelSize: Double, yPixelSize: Double, translations: [[Double]]? = nil,
                readout: ReadoutLayout? = nil, gain: Double? = nil, optics: ZonePlate? = nil) {
        self.scanID = scanID
        self.frames = frames
        self.darks = darks
        self.shapeY = shapeY
        self.shapeX = shapeX
        self.dtype = dtype
        self.energy = energy
        self.distance = distance
        self.xPixelSize = xPixelSize
        self.yPixelSize = yPixelSize
        self.translations = translations
        self.readout = readout
        self.gain = gain
        self.optics = optics
    }
}

/// The JSON header of a `stop` message.
public struct ScanStop: Codable, Equatable, Sendable {
    public var scanID: String
    /// Frame messages the sender sent (darks and data, duplicates included).
    public var sent: Int
    enum CodingKeys: String, CodingKey { case scanID = "scan_id", sent }
    public init(scanID: String, sent: Int) {
        self.scanID = scanID
        self.sent = sent
    }
}
