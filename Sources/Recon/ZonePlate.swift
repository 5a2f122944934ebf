import Foundation
import Numerics

/// A Fresnel zone plate and the illumination it makes at the sample.
///
/// The lens exit field is the pupil (diameter D, central stop, clipped by
/// the order-sorting aperture) times the lens phase exp(-i pi r^2 / (lambda f))
/// with f = D dr / lambda. It is carried to the sample plane at z = f + defocus
/// by the one-step Fresnel transform, U(x) ~ FT[U0(r) exp(i pi r^2 / (lambda z))],
/// sampled so that the output pixel is the sample-plane pixel: the pupil grid
/// pitch is lambda z / (N dx).
public struct ZonePlate: Codable, Equatable, Sendable {
    /// Lens diameter in m.
    public var diameter: Double
    /// Outermost zone width in m.
    public var outerZoneWidth: Double
    /// Central stop diameter in m (0: none).
    public var centralStop: Double
    /// Order-sorting aperture diameter in m (nil: none) and its distance upstream of the focus in m.
    public var osaDiameter: Double?
    public var osaDistance: Double
    /// Sample position relative to the focus in m (positive: downstream).
    public var defocus: Double

    /// The names files (`ns_optics`) and `start` messages use.
    enum CodingKeys: String, CodingKey {
        case diameter, outerZoneWidth = "outer_zone_width", centralStop = "central_stop", osaDiameter = "osa_diameter"
        case osaDistance = "osa_distance", defocus
    }

    /// A record names the lens and the defocus; no stop or OSA when it names none.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        diameter = try c.decode(Double.self, forKey: .diameter)
        outerZoneWidth = try c.decode(Double.self, forKey: .outerZoneWidth)
        centralStop = try c.decodeIfPresent(Double.self, forKey: .centralStop) ?? 0
        osaDiameter = try c.decodeIfPresent(Double.self, forKey: .osaDiameter)
        osaDistance = try c.decodeIfPresent(Double.self, forKey: .osaDistance) ?? 1e-3
        defocus = try c.decode(Double.self, forKey: .defocus)
    }

    public init(diameter: Double = 240e-6, outerZoneWidth: Double = 40e-9, centralStop: Double = 100e-6,
                osaDiameter: Double? = nil, osaDistance: Double = 1e-3, defocus: Double = 20e-6) {
        self.diameter = diameter
        self.outerZoneWidth = outerZoneWidth
        self.centralStop = centralStop
        self.osaDiameter = osaDiameter
        self.osaDistance = osaDistance
        self.defocus = defocus
    }

    /// Focal length in m at wavelength `lambda` (first order): f = D dr / lambda.
    public func focalLength(wavelength lambda: Double) -> Double { diameter * outerZoneWidth / lambda }

    /// Pupil radius in m that the OSA lets through: rays from pupil radius r
    /// cross the OSA plane at r * L / f.
    public func transmittedRadius(wavelength lambda: Double) -> Double {
        var r = diameter / 2
        if let osa = osaDiameter { r = min(r, osa / 2 * focalLength(wavelength: lambda) / osaDistance) }
        return r
    }

    /// A problem with recorded values (a file's or a `start` message's),
    /// naming the likely unit mistake, or nil. Lenses are 10 µm to 10 mm
    /// wide, with outermost zones of 5 nm to 10 µm; defocus is within 1 cm.
    public var recordProblem: String? {
        func metres(_ name: String, _ v: Double, _ range: ClosedRange<Double>) -> String? {
            guard v.isFinite else { return "\(name) is not finite" }
            guard range.contains(v) else {
                let hint = abs(v) > range.upperBound ? " (is it in µm or nm? lengths are in metres)" : ""
                return String(format: "%@ %g m is outside %g to %g m", name, v, range.lowerBound, range.upperBound) + hint
            }
            return nil
        }
        return metres("diameter", diameter, 1e-5...1e-2) ?? metres("outer_zone_width", outerZoneWidth, 5e-9...1e-5)
            ?? metres("central_stop", centralStop, 0...1e-2) ?? metres("defocus", defocus, -1e-2...1e-2)
            ?? metres("osa_distance", osaDistance, 0...1) ?? osaDiameter.flatMap { metres("osa_diameter", $0, 1e-7...1e-2) }
            ?? (centralStop < diameter ? nil : "central_stop \(centralStop) m is not smaller than the lens (\(diameter) m)")
    }

    public func problems(geometry: Geometry) -> [String] {
        var out: [String] = []
        if !(diameter > 0) { out.append("zone plate diameter must be positive, got \(diameter) m") }
        if !(outerZoneWidth > 0) { out.append("outer zone width must be positive, got \(outerZoneWidth) m") }
        if !(centralStop >= 0 && centralStop < diameter) {
            out.append("central stop \(centralStop) m must be at least 0 and smaller than the lens (\(diameter) m)")
        }
        if let osa = osaDiameter, !(osa > 0 && osaDistance > 0) {
            out.append("order-sorting aperture \(osa) m at \(osaDistance) m must have positive size and distance")
        }
        if out.isEmpty {
            let dx = geometry.samplePixelSize
            let z = focalLength(wavelength: geometry.wavelength) + defocus
            let pupilWindow = geometry.wavelength * z / dx
            if diameter >= pupilWindow {
                out.append(String(format: "sample pixel %.1f nm is too coarse for outer zone width %.1f nm: the detector cannot hold the lens's cone (use a larger frame or a shorter distance)",
                                  dx * 1e9, outerZoneWidth * 1e9))
            }
            let probeSize = diameter * abs(defocus) / z
            if probeSize > 0.8 * Double(geometry.frameSize) * dx {
                out.append(String(format: "defocus %.1f um makes a %.2f um probe, too large for the %.2f um window",
                                  defocus * 1e6, probeSize * 1e6, Double(geometry.frameSize) * dx * 1e6))
            }
        }
        return out
    }

    /// The illumination on the sample grid (frameSize x frameSize, pixel
    /// geometry.samplePixelSize), centred, scaled so sum |P|^2 = `photons`.
    public func probe(geometry: Geometry, photons: Double, distance: Double? = nil) throws -> Array2D<Complex<Float>> {
        let field = try propagate(geometry: geometry, distance: distance)
        let total = field.totalIntensity
        guard total > 0 else { throw SimulationError.invalid("the zone plate passes no light") }
        let scale = Float((photons / total).squareRoot())
        return field.map { $0.scaled(by: scale) }
    }

    /// The field at `distance` (default f + defocus) downstream of the lens,
    /// unnormalized; on the sample-plane pixel grid.
    /// `pupilWeight` multiplies the pupil at (y, x) in units of its outer
    /// radius (partially coherent modes weight it so).
    public func propagate(geometry: Geometry, distance: Double? = nil,
                          pupilWeight: ((Double, Double) -> Double)? = nil) throws -> Array2D<Complex<Float>> {
        let lambda = geometry.wavelength
        let f = focalLength(wavelength: lambda)
        let z = distance ?? (f + defocus)
        let n = geometry.frameSize
        let dxi = lambda * z / (Double(n) * geometry.samplePixelSize)  // pupil-plane pitch
        let outer = transmittedRadius(wavelength: lambda), inner = centralStop / 2
        // Lens chirp and propagation chirp combine to exp(i pi r^2 (1/z - 1/f) / lambda).
        let chirp = Double.pi * (1 / z - 1 / f) / lambda
        let sub = 4  // sub-pixel samples per axis for the pupil edges
        let pupil = Array2D<Complex<Float>>(height: n, width: n) { iy, ix in
            var covered = 0
            for sy in 0..<sub {
                for sx in 0..<sub {
                    let y = (Double(iy - n / 2) + (Double(sy) + 0.5) / Double(sub) - 0.5) * dxi
                    let x = (Double(ix - n / 2) + (Double(sx) + 0.5) / Double(sub) - 0.5) * dxi
                    let r = (x * x + y * y).squareRoot()
                    if r <= outer && r >= inner { covered += 1 }
                }
            }
            guard covered > 0 else { return .zero }
            let y = Double(iy - n / 2) * dxi, x = Double(ix - n / 2) * dxi
            let phase = chirp * (x * x + y * y)
            let a = Double(covered) / Double(sub * sub) * (pupilWeight?(y / outer, x / outer) ?? 1)
            return Complex(Float(a * cos(phase)), Float(a * sin(phase)))
        }
        // Centred pupil -> corner origin -> FFT -> centred field.
        let fft = try FourierTransform(height: n, width: n)
        return fft.forward(pupil.fftShifted(inverse: true)).fftShifted()
    }
}

public enum SimulationError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalid(String)

    public var description: String {
        switch self {
        case .invalid(let s): s
        }
    }
}
