import Foundation
import Numerics
import SwiftFFTW

/// Unitary 2-D FFTs of one shape for `Array2D` (copies through an aligned
/// buffer). For the simulator and references; the solver drives plans on
/// its own buffers.
public final class FourierTransform: @unchecked Sendable {
    public let height: Int
    public let width: Int
    private let forwardPlan: FFTPlan2D
    private let inversePlan: FFTPlan2D
    private let buffer: ComplexBuffer

    public init(height: Int, width: Int) throws {
        self.height = height
        self.width = width
        forwardPlan = try FFTPlan2D(height: height, width: width, direction: .forward, inPlace: true, rigor: .estimate)
        inversePlan = try FFTPlan2D(height: height, width: width, direction: .inverse, inPlace: true, rigor: .estimate)
        buffer = ComplexBuffer(count: height * width)
    }

    /// Unitary forward transform, zero frequency at index (0, 0).
    public func forward(_ a: Array2D<Complex<Float>>) -> Array2D<Complex<Float>> { run(forwardPlan, a) }

    /// Unitary inverse transform.
    public func inverse(_ a: Array2D<Complex<Float>>) -> Array2D<Complex<Float>> { run(inversePlan, a) }

    private func run(_ plan: FFTPlan2D, _ a: Array2D<Complex<Float>>) -> Array2D<Complex<Float>> {
        precondition(a.height == height && a.width == width, "\(a.height)x\(a.width) array for a \(height)x\(width) transform")
        a.values.withUnsafeBufferPointer { _ = buffer.buffer.initialize(from: $0) }
        // Shape and alignment match by construction.
        try! plan.execute(inPlace: buffer, normalization: .unitary)
        return Array2D(height: height, width: width, values: buffer.array)
    }
}

/// Shift by (dy, dx) pixels, fractions included, through the Fourier shift
/// theorem (periodic; the ramp is separable, one factor per row and column).
public func fourierShift(_ a: Array2D<Complex<Float>>, by dy: Double, _ dx: Double,
                         using fft: FourierTransform) -> Array2D<Complex<Float>> {
    if dy == 0 && dx == 0 { return a }
    var spectrum = fft.forward(a)
    let h = a.height, w = a.width
    let rows = shiftRamp(h, dy), columns = shiftRamp(w, dx)
    for y in 0..<h {
        for x in 0..<w { spectrum[y, x] = spectrum[y, x] * rows[y] * columns[x] }
    }
    return fft.inverse(spectrum)
}

/// The factors exp(-2 pi i f d) that shift a length-n signal by d samples
/// when they multiply its spectrum (zero frequency at index 0).
public func shiftRamp(_ n: Int, _ d: Double) -> [Complex<Float>] {
    (0..<n).map { k in
        let f = Double(k < (n + 1) / 2 ? k : k - n) / Double(n)
        let phase = -2 * Double.pi * f * d
        return Complex(Float(cos(phase)), Float(sin(phase)))
    }
}
