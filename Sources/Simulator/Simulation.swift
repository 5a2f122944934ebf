import Foundation
import Ingest
import Numerics
import Recon

/// A beamstop in front of the detector: a centred disc that transmits a
/// fraction of the light.
public struct Beamstop: Codable, Equatable, Sendable {
    /// Radius in detector pixels.
    public var radius: Double
    /// Intensity transmission inside the disc (0: opaque).
    public var transmission: Double

    public init(radius: Double, transmission: Double = 0) {
        self.radius = radius
        self.transmission = transmission
    }

    /// Transmission per pixel of a centred frameSize x frameSize detector.
    public func map(frameSize n: Int) -> Array2D<Float> {
        Array2D(height: n, width: n) { y, x in
            let dy = Double(y - n / 2), dx = Double(x - n / 2)
            return (dy * dy + dx * dx).squareRoot() <= radius ? Float(transmission) : 1
        }
    }
}

/// Everything that defines a simulated scan.
public struct SimulationConfig: Codable, Equatable, Sendable {
    public var geometry: Geometry
    public var zonePlate: ZonePlate
    public var sample: TestSample
    public var scan: Scan
    /// Photons per frame through an empty sample (sum of |probe|^2).
    public var photonsPerFrame: Double
    public var poisson: Bool
    public var beamstop: Beamstop?
    /// Mean background in photons per pixel, added before the Poisson draw.
    public var background: Double
    /// Raw fast-CCD frames instead of photon counts.
    public var detector: DetectorModel?
    public var darkFrames: Int
    public var seed: UInt64
    /// Relative powers of mutually incoherent illumination modes (nil: one coherent probe).
    public var modePowers: [Double]?
    /// Errors in the positions the file records (nil: the true ones).
    public var positionErrors: PositionErrors?

    public init(geometry: Geometry, zonePlate: ZonePlate = ZonePlate(), sample: TestSample = TestSample(),
                scan: Scan, photonsPerFrame: Double = 1e6, poisson: Bool = true, beamstop: Beamstop? = nil,
                background: Double = 0, detector: DetectorModel? = nil, darkFrames: Int = 0, seed: UInt64 = 1,
                modePowers: [Double]? = nil, positionErrors: PositionErrors? = nil) {
        self.geometry = geometry
        self.zonePlate = zonePlate
        self.sample = sample
        self.scan = scan
        self.photonsPerFrame = photonsPerFrame
        self.poisson = poisson
        self.beamstop = beamstop
        self.background = background
        self.detector = detector
        self.darkFrames = darkFrames
        self.seed = seed
        self.modePowers = modePowers
        self.positionErrors = positionErrors
    }

    /// A small default scan: 128x128 frames at 800 eV, 20x20 raster.
    public static var standard: SimulationConfig {
        SimulationConfig(
            geometry: Geometry(energy: 800 * PhysicalConstants.electronVolt, distance: 0.121,
                               detectorPixelSize: 60e-6, frameSize: 128),
            scan: Scan(pattern: .raster(rows: 20, columns: 20), step: 300e-9, jitter: 0.1))
    }

    public func problems() -> [String] {
        var out = geometry.problems() + sample.problems() + scan.problems()
        if geometry.problems().isEmpty { out += zonePlate.problems(geometry: geometry) }
        if !(photonsPerFrame > 0 && photonsPerFrame.isFinite) { out.append("photons per frame must be positive, got \(photonsPerFrame)") }
        if !(background >= 0) { out.append("background must be at least 0 photons per pixel, got \(background)") }
        if let b = beamstop, !(b.radius >= 0 && b.transmission >= 0 && b.transmission <= 1) {
            out.append("beamstop radius must be at least 0 pixels and its transmission in [0, 1]")
        }
        if let d = detector { out += d.problems(rows: geometry.frameSize, columns: geometry.frameSize) }
        if darkFrames < 0 { out.append("dark frames must be at least 0, got \(darkFrames)") }
        if darkFrames > 0 && detector == nil { out.append("dark frames need the raw detector mode") }
        if let p = modePowers { out += IlluminationModes.problems(p) }
        if let e = positionErrors { out += e.problems }
        return out
    }
}

/// One scan point: the probe's true position on the sample in m, and the
/// top-left corner of its window in object pixels (fractional).
public struct ScanPoint: Equatable, Sendable {
    public var y: Double
    public var x: Double
    public var pixelY: Double
    public var pixelX: Double
}

/// A simulated scan, ready to produce any frame on demand (so ranks can
/// split the frames and nothing holds the whole scan in memory).
/// Not thread-safe: one simulation per thread (it reuses its FFT buffer).
public final class Simulation: @unchecked Sendable {
    public let config: SimulationConfig
    /// The illumination: its first (or only) mode.
    public var probe: Array2D<Complex<Float>> { modes[0] }
    /// Mutually incoherent, orthogonal illumination modes, strongest first.
    public let modes: [Array2D<Complex<Float>>]
    /// Each mode's share of the photons.
    public var modeFractions: [Double] { modes.powerFractions }
    public let object: Array2D<Complex<Float>>
    public let thickness: Array2D<Float>
    public let points: [ScanPoint]
    /// The positions (y, x) in m that the file records: the true ones, or
    /// with `config.positionErrors` added.
    public let recordedPositions: [(y: Double, x: Double)]
    public let detector: DetectorTruth?
    private let beamstopMap: Array2D<Float>?
    private let fft: FourierTransform

    public var frameSize: Int { config.geometry.frameSize }
    public var frameCount: Int { points.count }

    public init(_ config: SimulationConfig, thickness userThickness: Array2D<Float>? = nil) throws {
        let problems = config.problems()
        guard problems.isEmpty else { throw SimulationError.invalid(problems.joined(separator: "; ")) }
        self.config = config
        let g = config.geometry, n = g.frameSize
        if let powers = config.modePowers, powers.count > 1 {
            modes = try IlluminationModes.make(zonePlate: config.zonePlate, geometry: g, photons: config.photonsPerFrame,
                                               powers: powers)
        } else {
            modes = [try config.zonePlate.probe(geometry: g, photons: config.photonsPerFrame)]
        }
        fft = try FourierTransform(height: n, width: n)

        // The object covers the recorded scan plus one window and a margin:
        // the grid the solver makes from the file. True windows that errors
        // would put past its edge stay at the edge.
        let positions = config.scan.positions()
        let dx = g.samplePixelSize
        let errors = config.positionErrors?.errors(count: positions.count) ?? positions.map { _ in (0, 0) }
        recordedPositions = zip(positions, errors).map { ($0.y + $1.y * dx, $0.x + $1.x * dx) }
        let grid = ObjectGrid(positions: recordedPositions, pixelSize: dx, frameSize: n)
        let (height, width) = (grid.height, grid.width)
        let top = Double(height - n), right = Double(width - n)
        points = zip(zip(grid.exactCorners, errors), recordedPositions).map { ce, recorded in
            let (corner, e) = ce
            let y = min(max(corner.y - e.y, 0), top), x = min(max(corner.x - e.x, 0), right)
            return ScanPoint(y: recorded.y + (y - corner.y) * dx, x: recorded.x + (x - corner.x) * dx, pixelY: y, pixelX: x)
        }

        if let user = userThickness {
            thickness = Self.fit(user, height: height, width: width, maximum: Float(config.sample.thickness))
        } else {
            thickness = config.sample.thicknessMap(height: height, width: width)
        }
        object = config.sample.transmission(thickness: thickness, wavelength: g.wavelength)
        detector = try config.detector.map { try DetectorTruth(model: $0, rows: n, columns: n) }
        beamstopMap = config.beamstop?.map(frameSize: n)
    }

    /// A user's thickness image, scaled to [0, maximum] and resampled (nearest) onto the object grid.
    static func fit(_ image: Array2D<Float>, height: Int, width: Int, maximum: Float) -> Array2D<Float> {
        let lo = image.values.min() ?? 0, hi = image.values.max() ?? 1
        let span = hi > lo ? hi - lo : 1
        return Array2D(height: height, width: width) { y, x in
            let sy = min(image.height - 1, y * image.height / height)
            let sx = min(image.width - 1, x * image.width / width)
            return (image[sy, sx] - lo) / span * maximum
        }
    }

    /// The exit wave of illumination mode `mode` at scan point `index`: the
    /// mode shifted by the fractional part of the position (Fourier shift)
    /// times the object window.
    public func exitWave(at index: Int, mode: Int = 0) -> Array2D<Complex<Float>> {
        exitWave(object: object, pixelY: points[index].pixelY, pixelX: points[index].pixelX, mode: mode)
    }

    public func exitWave(object: Array2D<Complex<Float>>, pixelY: Double, pixelX: Double, mode: Int = 0) -> Array2D<Complex<Float>> {
        let n = frameSize
        let iy = Int(pixelY.rounded(.down)), ix = Int(pixelX.rounded(.down))
        let shifted = shift(modes[mode], by: pixelY - Double(iy), pixelX - Double(ix))
        return Array2D(height: n, width: n) { y, x in shifted[y, x] * object[iy + y, ix + x] }
    }

    /// Sub-pixel shift of a frame-sized array by (dy, dx) pixels.
    public func shift(_ a: Array2D<Complex<Float>>, by dy: Double, _ dx: Double) -> Array2D<Complex<Float>> {
        fourierShift(a, by: dy, dx, using: fft)
    }

    /// Noise-free far-field intensity, the sum over the illumination's modes
    /// of |F(exit)|^2, zero frequency at the centre pixel.
    public func cleanIntensity(at index: Int) -> Array2D<Float> {
        var total = fft.forward(exitWave(at: index)).intensity
        for k in modes.indices.dropFirst() {
            let more = fft.forward(exitWave(at: index, mode: k)).intensity
            for i in total.values.indices { total.values[i] += more.values[i] }
        }
        return total.fftShifted()
    }

    public func cleanIntensity(of exit: Array2D<Complex<Float>>) -> Array2D<Float> {
        fft.forward(exit).intensity.fftShifted()
    }

    /// What the detector records at scan point `index`: photon counts
    /// (beamstop, background, Poisson), deterministic from (seed, index).
    public func measuredPhotons(clean: Array2D<Float>, index: Int) -> Array2D<Float> {
        var rng = SeededRandom(seed: config.seed, stream: UInt64(index) &+ 0x1_0000_0000)
        var out = clean
        for i in 0..<out.count {
            var mean = Double(out.values[i])
            if let b = beamstopMap { mean *= Double(b.values[i]) }
            mean += config.background
            out.values[i] = Float(config.poisson ? rng.poisson(mean) : mean)
        }
        return out
    }

    /// The raw UInt16 frame for scan point `index` (raw detector mode only).
    public func rawFrame(photons: Array2D<Float>, index: Int) -> [UInt16]? {
        detector?.rawFrame(photons: photons.values, seed: config.seed, stream: UInt64(index) &+ 0x2_0000_0000)
    }

    /// Dark frame `index` (raw detector mode only).
    public func darkFrame(_ index: Int) -> [UInt16]? {
        detector?.rawFrame(photons: nil, seed: config.seed, stream: UInt64(index) &+ 0x3_0000_0000)
    }

    /// Everything about one frame: clean truth and what was measured.
    public struct Frame: Sendable {
        public var index: Int
        public var clean: Array2D<Float>
        public var photons: Array2D<Float>
        public var raw: [UInt16]?
    }

    public func frame(_ index: Int) -> Frame {
        let clean = cleanIntensity(at: index)
        let photons = measuredPhotons(clean: clean, index: index)
        return Frame(index: index, clean: clean, photons: photons, raw: rawFrame(photons: photons, index: index))
    }
}
