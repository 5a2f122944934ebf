import CFFTW
import Numerics

/// A batch of single-precision 1-D transforms over strided lines of a
/// buffer (rows, or columns with stride = row length), planned once:
/// complex to complex, or real to complex (the n/2 + 1 non-negative
/// frequencies). Unnormalized, as FFTW computes them.
public final class FFTLines: @unchecked Sendable {
    public enum Kind: Sendable, Equatable {
        case complex(FFTPlan2D.Direction)
        case realToComplex
    }

    /// Where line `j`'s element `i` lies: `j * distance + i * stride`, in
    /// elements (floats for a real input, complex numbers otherwise).
    public struct Lines: Sendable, Equatable {
        public var stride: Int
        public var distance: Int
        public init(stride: Int, distance: Int) {
            self.stride = stride
            self.distance = distance
        }
    }

    public let length: Int
    public let count: Int
    public let kind: Kind
    public let input: Lines
    public let output: Lines
    public let inPlace: Bool
    private let plan: fftwf_plan
    private let alignment: Int32

    /// Elements of the output per line.
    public var outputLength: Int { kind == .realToComplex ? length / 2 + 1 : length }
    /// Complex values a buffer must hold for the input and the output.
    public var inputExtent: Int {
        let elements = (count - 1) * input.distance + (length - 1) * input.stride + 1
        return kind == .realToComplex ? (elements + 1) / 2 : elements
    }
    public var outputExtent: Int { (count - 1) * output.distance + (outputLength - 1) * output.stride + 1 }

    /// Plans with scratch buffers, so FFTW_MEASURE never touches caller data.
    public init(length: Int, count: Int, kind: Kind, input: Lines, output: Lines, inPlace: Bool = false,
                rigor: FFTPlan2D.Rigor = .measure) throws {
        let call = kind == .realToComplex ? "fftwf_plan_many_dft_r2c" : "fftwf_plan_many_dft"
        guard length > 0, count > 0, input.stride > 0, input.distance >= 0, output.stride > 0, output.distance >= 0 else {
            throw FFTWError(call: call, reason: "\(count) lines of \(length) with strides \(input), \(output) must be positive")
        }
        FFTW.ensureSetUp()
        self.length = length
        self.count = count
        self.kind = kind
        self.input = input
        self.output = output
        self.inPlace = inPlace
        let flags = rigor.flags
        let outputCount = (count - 1) * output.distance + ((kind == .realToComplex ? length / 2 + 1 : length) - 1) * output.stride + 1
        let inputElements = (count - 1) * input.distance + (length - 1) * input.stride + 1
        let inputCount = kind == .realToComplex ? (inputElements + 1) / 2 : inputElements
        let a = ComplexBuffer(count: inPlace ? max(inputCount, outputCount) : inputCount)
        let b = inPlace ? a : ComplexBuffer(count: outputCount)
        var n = [Int32(length)]
        let made: fftwf_plan? = a.baseAddress.withMemoryRebound(to: fftwf_complex.self, capacity: a.count) { ip in
            b.baseAddress.withMemoryRebound(to: fftwf_complex.self, capacity: b.count) { op in
                switch kind {
                case .complex(let direction):
                    return fftwf_plan_many_dft(1, &n, Int32(count), ip, nil, Int32(input.stride), Int32(input.distance),
                                               op, nil, Int32(output.stride), Int32(output.distance),
                                               direction == .forward ? nsfftw_forward() : nsfftw_backward(), flags)
                case .realToComplex:
                    return UnsafeMutableRawPointer(ip).withMemoryRebound(to: Float.self, capacity: 2 * a.count) { real in
                        fftwf_plan_many_dft_r2c(1, &n, Int32(count), real, nil, Int32(input.stride), Int32(input.distance),
                                                op, nil, Int32(output.stride), Int32(output.distance), flags)
                    }
                }
            }
        }
        guard let made else {
            throw FFTWError(call: "\(call)(\(count) x \(length))",
                            reason: rigor == .wisdomOnly ? "no wisdom for this transform" : "FFTW could not make a plan")
        }
        plan = made
        alignment = FFTW.alignment(of: a.baseAddress)
    }

    deinit { fftwf_destroy_plan(plan) }

    /// Transforms `input` into `output` (the same buffer for in-place plans);
    /// a real input is read as floats from the buffer's start.
    public func execute(_ input: ComplexBuffer, _ output: ComplexBuffer) throws(FFTWError) {
        let call = kind == .realToComplex ? "fftwf_execute_dft_r2c" : "fftwf_execute_dft"
        if inPlace != (input === output) {
            throw FFTWError(call: call, reason: inPlace ? "in-place plan given distinct buffers" : "out-of-place plan given one buffer")
        }
        guard input.count >= inputExtent, output.count >= outputExtent else {
            throw FFTWError(call: call, reason: "buffers of \(input.count) and \(output.count) values for \(count) lines of \(length)")
        }
        try FFTW.checkAlignment(call, input.baseAddress, output.baseAddress, plan: alignment)
        input.baseAddress.withMemoryRebound(to: fftwf_complex.self, capacity: input.count) { ip in
            output.baseAddress.withMemoryRebound(to: fftwf_complex.self, capacity: output.count) { op in
                switch kind {
                case .complex: fftwf_execute_dft(plan, ip, op)
                case .realToComplex:
                    UnsafeMutableRawPointer(ip).withMemoryRebound(to: Float.self, capacity: 2 * input.count) { fftwf_execute_dft_r2c(plan, $0, op) }
                }
            }
        }
    }
}
