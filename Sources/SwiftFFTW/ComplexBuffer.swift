import CFFTW
import Numerics

/// A SIMD-aligned array of single-precision complex numbers (fftwf_malloc),
/// the memory FFT plans run on without copies.
public final class ComplexBuffer: @unchecked Sendable {
    public let count: Int
    public let baseAddress: UnsafeMutablePointer<Complex<Float>>

    public init(count: Int, fill value: Complex<Float> = .zero) {
        self.count = count
        guard let raw = fftwf_malloc(max(1, count) * MemoryLayout<Complex<Float>>.stride) else {
            fatalError("fftwf_malloc: out of memory for \(count) complex values")
        }
        baseAddress = raw.bindMemory(to: Complex<Float>.self, capacity: max(1, count))
        HugePages.advise(raw, bytes: count * MemoryLayout<Complex<Float>>.stride)
        baseAddress.initialize(repeating: value, count: count)
    }

    public convenience init(_ values: [Complex<Float>]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { _ = buffer.initialize(from: $0) }
    }

    deinit { fftwf_free(baseAddress) }

    public var buffer: UnsafeMutableBufferPointer<Complex<Float>> {
        UnsafeMutableBufferPointer(start: baseAddress, count: count)
    }

    public subscript(i: Int) -> Complex<Float> {
        get { baseAddress[i] }
        set { baseAddress[i] = newValue }
    }

    public var array: [Complex<Float>] { Array(buffer) }
}
