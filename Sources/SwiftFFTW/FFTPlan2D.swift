import CFFTW
import Numerics

/// A single-precision complex 2-D FFT of a fixed shape, batch and direction,
/// planned once and executed on any buffers with the planning alignment.
///
/// Scaling is explicit at every call: `.none` is FFTW's raw transform
/// (forward then inverse multiplies by height*width), `.unitary` scales each
/// direction by 1/sqrt(height*width) (Parseval holds), `.inverseByN` scales by
/// 1/(height*width) (numpy's ifft convention).
public final class FFTPlan2D: @unchecked Sendable {
    public enum Direction: Sendable { case forward, inverse }
    public enum Rigor: Sendable { case estimate, measure, patient, wisdomOnly }
    public enum Normalization: Sendable { case none, unitary, inverseByN }

    public let height: Int
    public let width: Int
    public let batch: Int
    public let direction: Direction
    public let inPlace: Bool
    private let plan: fftwf_plan
    private let alignment: Int32

    public var elementCount: Int { height * width * batch }

    /// Plans with scratch arrays, so FFTW_MEASURE never touches caller data.
    public init(height: Int, width: Int, batch: Int = 1, direction: Direction,
                inPlace: Bool = false, rigor: Rigor = .measure) throws {
        guard height > 0, width > 0, batch > 0 else {
            throw FFTWError(call: "fftwf_plan_many_dft", reason: "shape \(batch)x\(height)x\(width) must be positive")
        }
        FFTW.ensureSetUp()
        self.height = height
        self.width = width
        self.batch = batch
        self.direction = direction
        self.inPlace = inPlace
        let n = height * width * batch
        let input = ComplexBuffer(count: n)
        let output = inPlace ? input : ComplexBuffer(count: n)
        let flags = rigor.flags
        let sign = direction == .forward ? nsfftw_forward() : nsfftw_backward()
        var dims: [Int32] = [Int32(height), Int32(width)]
        let dist = Int32(height * width)
        let made = input.baseAddress.withMemoryRebound(to: fftwf_complex.self, capacity: n) { ip in
            output.baseAddress.withMemoryRebound(to: fftwf_complex.self, capacity: n) { op in
                fftwf_plan_many_dft(2, &dims, Int32(batch), ip, nil, 1, dist, op, nil, 1, dist, sign, flags)
            }
        }
        guard let made else {
            throw FFTWError(call: "fftwf_plan_many_dft(\(batch)x\(height)x\(width))",
                            reason: rigor == .wisdomOnly ? "no wisdom for this transform" : "FFTW could not make a plan")
        }
        plan = made
        alignment = FFTW.alignment(of: input.baseAddress)
    }

    deinit { fftwf_destroy_plan(plan) }

    /// Transforms `input` into `output` (the same pointer for in-place plans).
    public func execute(_ input: UnsafeMutablePointer<Complex<Float>>, _ output: UnsafeMutablePointer<Complex<Float>>,
                        normalization: Normalization) throws(FFTWError) {
        if inPlace != (input == output) {
            throw FFTWError(call: "fftwf_execute_dft",
                            reason: inPlace ? "in-place plan given distinct input and output" : "out-of-place plan given one buffer")
        }
        let n = elementCount
        try FFTW.checkAlignment("fftwf_execute_dft", input, output, plan: alignment)
        input.withMemoryRebound(to: fftwf_complex.self, capacity: n) { ip in
            output.withMemoryRebound(to: fftwf_complex.self, capacity: n) { op in
                fftwf_execute_dft(plan, ip, op)
            }
        }
        let scale: Float? = switch normalization {
        case .none: nil
        case .unitary: 1 / Float(height * width).squareRoot()
        case .inverseByN: direction == .inverse ? 1 / Float(height * width) : nil
        }
        if let scale {
            output.withMemoryRebound(to: Float.self, capacity: 2 * n) { p in
                for i in 0..<(2 * n) { p[i] *= scale }
            }
        }
    }

    public func execute(_ input: ComplexBuffer, _ output: ComplexBuffer, normalization: Normalization) throws(FFTWError) {
        guard input.count >= elementCount, output.count >= elementCount else {
            throw FFTWError(call: "fftwf_execute_dft",
                            reason: "buffers of \(input.count) and \(output.count) values for a \(batch)x\(height)x\(width) plan")
        }
        try execute(input.baseAddress, output.baseAddress, normalization: normalization)
    }

    public func execute(inPlace buffer: ComplexBuffer, normalization: Normalization) throws(FFTWError) {
        try execute(buffer, buffer, normalization: normalization)
    }
}

extension FFTPlan2D.Rigor {
    /// FFTW's planner flag.
    var flags: UInt32 {
        switch self {
        case .estimate: nsfftw_estimate()
        case .measure: nsfftw_measure()
        case .patient: nsfftw_patient()
        case .wisdomOnly: nsfftw_wisdom_only()
        }
    }
}
