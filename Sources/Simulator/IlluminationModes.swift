import Foundation
import Numerics
import Recon

/// Partially coherent illumination as mutually incoherent modes: the
/// frames are the incoherent sum of what each mode makes.
///
/// A source of finite size lights the zone plate with a field whose
/// coherent modes are, for a Gaussian Schell-model beam, Hermite-Gaussian
/// across the pupil. The modes here weight the pupil by the low orders
/// (1, x, y, x^2, xy, y^2, ...), are carried to the sample as the coherent
/// probe is, made orthonormal in order (Gram-Schmidt, so the first stays
/// the zone plate's own probe) and scaled to their share of the photons.
public enum IlluminationModes {
    /// The most modes a simulation makes.
    public static let maximum = 8

    /// Problems with a list of mode powers (relative; any positive scale).
    public static func problems(_ powers: [Double]) -> [String] {
        if powers.isEmpty || powers.count > maximum {
            return ["mode powers: give 1 to \(maximum) values, got \(powers.count)"]
        }
        if !powers.allSatisfy({ $0 > 0 && $0.isFinite }) { return ["mode powers must be positive, got \(powers)"] }
        return []
    }

    /// One field per power, orthonormal, mode k carrying powers[k] / sum of
    /// `photons` (sum |P_k|^2).
    public static func make(zonePlate: ZonePlate, geometry: Geometry, photons: Double, powers: [Double]) throws -> [Array2D<Complex<Float>>] {
        let problems = problems(powers)
        guard problems.isEmpty else { throw SimulationError.invalid(problems.joined(separator: "; ")) }
        var basis: [[Complex<Double>]] = []
        for k in powers.indices {
            let (a, b) = ModeShapes.exponents(k)
            let field = try zonePlate.propagate(geometry: geometry, pupilWeight: k == 0 ? nil : { y, x in
                pow(x, Double(a)) * pow(y, Double(b))
            })
            var v = field.values.map { Complex(Double($0.real), Double($0.imaginary)) }
            for u in basis { ModeShapes.removeProjection(of: u, from: &v) }
            let norm = v.reduce(0.0) { $0 + $1.lengthSquared }.squareRoot()
            guard norm > 1e-9 * Double(v.count) else {
                throw SimulationError.invalid("illumination mode \(k + 1) is not independent of the ones before it on this frame size")
            }
            basis.append(v.map { Complex($0.real / norm, $0.imaginary / norm) })
        }
        let total = powers.reduce(0, +)
        let n = geometry.frameSize
        return zip(basis, powers).map { v, power in
            let scale = (photons * power / total).squareRoot()
            return Array2D(height: n, width: n, values: v.map { Complex(Float($0.real * scale), Float($0.imaginary * scale)) })
        }
    }
}

/// Errors in the positions a file records (stage jitter and a slow drift):
/// the truth keeps the true ones.
public struct PositionErrors: Codable, Equatable, Sendable {
    /// Root-mean-square length of the random error, in object pixels
    /// (each axis drawn with rms / sqrt 2).
    public var rms: Double
    /// The drift's length at the scan's last position, in object pixels
    /// (growing linearly in scan order, in one direction).
    public var drift: Double
    public var seed: UInt64

    public init(rms: Double, drift: Double = 0, seed: UInt64 = 1) {
        self.rms = rms
        self.drift = drift
        self.seed = seed
    }

    public var problems: [String] {
        var out: [String] = []
        if !(rms >= 0 && rms <= 50) { out.append("position error must be 0 to 50 pixels rms, got \(rms)") }
        if !(drift >= 0 && drift <= 50) { out.append("position drift must be 0 to 50 pixels, got \(drift)") }
        return out
    }

    /// The error (y, x) in pixels of each of `count` positions: recorded = true + error.
    public func errors(count: Int) -> [(y: Double, x: Double)] {
        var rng = SeededRandom(seed: seed, stream: 0x504F_5345)
        let angle = 2 * Double.pi * rng.uniform()
        let sigma = rms / 2.0.squareRoot()
        return (0..<count).map { i in
            let t = count > 1 ? Double(i) / Double(count - 1) : 0
            return (sigma * rng.normal() + drift * t * sin(angle), sigma * rng.normal() + drift * t * cos(angle))
        }
    }
}
