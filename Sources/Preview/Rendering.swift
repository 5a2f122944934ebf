import Foundation
import Numerics
import Recon

/// An 8-bit image, grey or RGB, row-major from the top-left.
public struct Raster: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let rgb: Bool
    public var pixels: [UInt8]

    public init(width: Int, height: Int, rgb: Bool, fill: UInt8 = 0) {
        self.width = width
        self.height = height
        self.rgb = rgb
        pixels = [UInt8](repeating: fill, count: width * height * (rgb ? 3 : 1))
    }

    public mutating func set(_ y: Int, _ x: Int, _ c: (UInt8, UInt8, UInt8)) {
        guard y >= 0, y < height, x >= 0, x < width else { return }
        if rgb {
            let k = 3 * (y * width + x)
            pixels[k] = c.0; pixels[k + 1] = c.1; pixels[k + 2] = c.2
        } else {
            pixels[y * width + x] = c.0
        }
    }
}

/// Maps of complex images for a person to look at.
public enum Rendering {
    /// Grey levels spanning the 1st to 99th percentile of `values` over `region`
    /// (all pixels when nil), so a few outliers do not wash out the image.
    public static func grey(_ values: [Float], height: Int, width: Int, region: [Bool]? = nil) -> Raster {
        precondition(values.count == height * width)
        var sample = region.map { r in values.indices.filter { r[$0] }.map { values[$0] } } ?? values
        sample = sample.filter { $0.isFinite }
        sample.sort()
        var image = Raster(width: width, height: height, rgb: false)
        guard let first = sample.first else { return image }
        let lo = sample[Int(Double(sample.count - 1) * 0.01)], hi = sample[Int(Double(sample.count - 1) * 0.99)]
        let span = hi > lo ? hi - lo : max(abs(first), 1)
        for i in values.indices {
            let v = values[i].isFinite ? (values[i] - lo) / span : 0
            image.pixels[i] = UInt8(max(0, min(255, (v * 255).rounded())))
        }
        return image
    }

    /// The phase of `values` after removing the global phase (the
    /// amplitude-weighted mean over `region`), which reconstructions cannot fix.
    public static func relativePhase(_ values: [Complex<Float>], region: [Bool]? = nil) -> [Float] {
        var mean = Complex<Double>.zero
        for i in values.indices where region?[i] ?? true {
            mean += Complex(Double(values[i].real), Double(values[i].imaginary))
        }
        let reference = mean.length > 0 ? Complex(Float(mean.real), Float(-mean.imaginary)) : Complex<Float>(1, 0)
        return values.map { v in
            let z = v * reference
            return atan2(z.imaginary, z.real)
        }
    }

    /// Phase as hue on a colour wheel, brightness from the amplitude: the
    /// usual picture of a probe, where phase alone is noise outside the beam.
    public static func complexColour(_ values: [Complex<Float>], height: Int, width: Int) -> Raster {
        precondition(values.count == height * width)
        let top = values.map(\.length).max() ?? 0
        let phases = relativePhase(values)
        var image = Raster(width: width, height: height, rgb: true)
        for i in values.indices {
            let value = top > 0 ? Double(values[i].length / top) : 0
            image.set(i / width, i % width, hsv(hue: (Double(phases[i]) + .pi) / (2 * .pi), value: value.squareRoot()))
        }
        return image
    }

    static func hsv(hue: Double, value: Double) -> (UInt8, UInt8, UInt8) {
        let h = (hue - hue.rounded(.down)) * 6, sector = Int(h) % 6, f = h - h.rounded(.down)
        let v = max(0, min(1, value)), p = 0.0, q = v * (1 - f), t = v * f
        let (r, g, b): (Double, Double, Double) = switch sector {
        case 0: (v, t, p)
        case 1: (q, v, p)
        case 2: (p, v, t)
        case 3: (p, q, v)
        case 4: (t, p, v)
        default: (v, p, q)
        }
        return (UInt8((r * 255).rounded()), UInt8((g * 255).rounded()), UInt8((b * 255).rounded()))
    }
}
