import Foundation
import Ingest
import Numerics
import Recon

/// A procedural test sample: a thickness map of one material (a Siemens
/// star, groups of lines and spaces, random particles), deterministic from
/// its seed, turned into a complex transmission with n = 1 - delta + i beta.
public struct TestSample: Codable, Equatable, Sendable {
    /// Thickness in m of the resolution-target features (particles vary around it).
    public var thickness: Double
    /// Refractive index decrement and absorption index of the material at the scan's energy.
    public var delta: Double
    public var beta: Double
    public var particles: Int
    public var spokes: Int
    public var seed: UInt64

    public init(thickness: Double = 100e-9, delta: Double = 1e-3, beta: Double = 2.5e-4,
                particles: Int = 40, spokes: Int = 36, seed: UInt64 = 1) {
        self.thickness = thickness
        self.delta = delta
        self.beta = beta
        self.particles = particles
        self.spokes = spokes
        self.seed = seed
    }

    public func problems() -> [String] {
        var out: [String] = []
        if !(thickness >= 0 && thickness.isFinite) { out.append("sample thickness must be at least 0 m, got \(thickness)") }
        if !(delta >= 0 && delta.isFinite) { out.append("delta must be at least 0, got \(delta)") }
        if !(beta >= 0 && beta.isFinite) { out.append("beta must be at least 0, got \(beta)") }
        if particles < 0 { out.append("particles must be at least 0, got \(particles)") }
        if spokes < 2 { out.append("spokes must be at least 2, got \(spokes)") }
        return out
    }

    /// Thickness in m on a height x width grid.
    public func thicknessMap(height: Int, width: Int) -> Array2D<Float> {
        var map = Array2D<Float>(height: height, width: width, repeating: 0)
        let t = Float(thickness)
        let cy = Double(height) / 2, cx = Double(width) / 2
        let size = Double(min(height, width))

        // Siemens star in the centre: alternating wedges out to 30% of the field.
        let starRadius = 0.3 * size, hub = 0.03 * size
        for y in 0..<height {
            for x in 0..<width {
                let dy = Double(y) + 0.5 - cy, dx = Double(x) + 0.5 - cx
                let r = (dy * dy + dx * dx).squareRoot()
                guard r <= starRadius && r >= hub else { continue }
                let angle = atan2(dy, dx) + Double.pi
                if Int(angle / (2 * Double.pi) * Double(spokes * 2)) % 2 == 0 { map[y, x] = t }
            }
        }

        // Lines and spaces in the top-left corner: periods of 2, 3, 4 and 6 pixels.
        var y0 = Int(0.05 * size), x0 = Int(0.05 * size)
        let barLength = max(4, Int(0.12 * size))
        for period in [2, 3, 4, 6] {
            for bar in 0..<5 {
                for dy in 0..<barLength {
                    for dx in 0..<(period / 2 + period % 2) {
                        let y = y0 + dy, x = x0 + bar * period + dx
                        if y < height && x < width { map[y, x] = t }
                    }
                }
            }
            x0 += 5 * period + 3
            if x0 > Int(0.3 * size) { x0 = Int(0.05 * size); y0 += barLength + 3 }
        }

        // Random particles anywhere: discs of varying size and height.
        var rng = SeededRandom(seed: seed, stream: 0x5A4D_504C)
        for _ in 0..<particles {
            let py = rng.uniform() * Double(height), px = rng.uniform() * Double(width)
            let radius = (0.01 + 0.03 * rng.uniform()) * size
            let height_ = Float(0.3 + 0.7 * rng.uniform()) * t
            let r2 = radius * radius
            for y in max(0, Int(py - radius))..<min(height, Int(py + radius) + 1) {
                for x in max(0, Int(px - radius))..<min(width, Int(px + radius) + 1) {
                    let dy = Double(y) + 0.5 - py, dx = Double(x) + 0.5 - px
                    let d2 = dy * dy + dx * dx
                    // A sphere-like profile, so edges are soft as in real particles.
                    if d2 < r2 { map[y, x] = min(2 * t, map[y, x] + height_ * Float((1 - d2 / r2).squareRoot())) }
                }
            }
        }
        return map
    }

    /// O = exp(i k (n - 1) t) = exp(-i k delta t) exp(-k beta t), k = 2 pi / lambda.
    public func transmission(thickness map: Array2D<Float>, wavelength: Double) -> Array2D<Complex<Float>> {
        let k = 2 * Double.pi / wavelength
        return map.map { t in
            let amplitude = exp(-k * beta * Double(t))
            let phase = -k * delta * Double(t)
            return Complex(Float(amplitude * cos(phase)), Float(amplitude * sin(phase)))
        }
    }
}
