import Foundation
import Numerics
import SwiftFFTW
import Testing

/// The obviously-right reference: a 2-D DFT in double precision.
func naiveDFT2D(_ input: [Complex<Float>], height: Int, width: Int, sign: Double) -> [Complex<Double>] {
    var out = [Complex<Double>](repeating: .zero, count: height * width)
    for ky in 0..<height {
        for kx in 0..<width {
            var acc = Complex<Double>.zero
            for y in 0..<height {
                for x in 0..<width {
                    let phase = sign * 2 * Double.pi * (Double(ky * y) / Double(height) + Double(kx * x) / Double(width))
                    let v = input[y * width + x]
                    acc += Complex(Double(v.real), Double(v.imaginary)) * Complex(cos(phase), sin(phase))
                }
            }
            out[ky * width + kx] = acc
        }
    }
    return out
}

func randomComplex(_ count: Int, seed: UInt64) -> [Complex<Float>] {
    var state = seed
    func next() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(state >> 40) / Float(1 << 24) * 2 - 1
    }
    return (0..<count).map { _ in Complex(next(), next()) }
}

func maxDifference(_ a: [Complex<Float>], _ b: [Complex<Double>]) -> Double {
    zip(a, b).map { (Complex(Double($0.real), Double($0.imaginary)) - $1).length }.max() ?? 0
}

@Suite struct FFTPlanTests {
    @Test(arguments: [(6, 10, 1), (8, 8, 3), (5, 7, 2)])
    func forwardMatchesNaiveDFT(shape: (Int, Int, Int)) throws {
        let (h, w, batch) = shape
        let plan = try FFTPlan2D(height: h, width: w, batch: batch, direction: .forward, rigor: .estimate)
        let x = randomComplex(h * w * batch, seed: UInt64(h * 100 + w))
        let input = ComplexBuffer(x), output = ComplexBuffer(count: x.count)
        try plan.execute(input, output, normalization: .none)
        for b in 0..<batch {
            let slice = Array(x[(b * h * w)..<((b + 1) * h * w)])
            let expected = naiveDFT2D(slice, height: h, width: w, sign: -1)
            let got = Array(output.array[(b * h * w)..<((b + 1) * h * w)])
            #expect(maxDifference(got, expected) < 1e-4 * Double(h * w))
        }
    }

    @Test func inverseMatchesNaiveDFTWithNumpyScaling() throws {
        let plan = try FFTPlan2D(height: 4, width: 6, direction: .inverse, rigor: .estimate)
        let x = randomComplex(24, seed: 7)
        let output = ComplexBuffer(count: 24)
        try plan.execute(ComplexBuffer(x), output, normalization: .inverseByN)
        let expected = naiveDFT2D(x, height: 4, width: 6, sign: 1).map { $0 / 24 }
        #expect(maxDifference(output.array, expected) < 1e-5)
    }

    @Test func unitaryRoundTripIsIdentityAndKeepsEnergy() throws {
        let forward = try FFTPlan2D(height: 32, width: 16, direction: .forward, inPlace: true)
        let inverse = try FFTPlan2D(height: 32, width: 16, direction: .inverse, inPlace: true)
        let x = randomComplex(512, seed: 11)
        let buffer = ComplexBuffer(x)
        try forward.execute(inPlace: buffer, normalization: .unitary)
        let energyIn = x.reduce(0) { $0 + Double($1.lengthSquared) }
        let energyOut = buffer.array.reduce(0) { $0 + Double($1.lengthSquared) }
        #expect(abs(energyIn - energyOut) / energyIn < 1e-5)  // Parseval
        try inverse.execute(inPlace: buffer, normalization: .unitary)
        #expect(zip(buffer.array, x).allSatisfy { ($0 - $1).length < 1e-5 })
    }

    @Test func unnormalizedRoundTripScalesByN() throws {
        let forward = try FFTPlan2D(height: 4, width: 4, direction: .forward)
        let inverse = try FFTPlan2D(height: 4, width: 4, direction: .inverse)
        let x = randomComplex(16, seed: 3)
        let a = ComplexBuffer(x), b = ComplexBuffer(count: 16)
        try forward.execute(a, b, normalization: .none)
        try inverse.execute(b, a, normalization: .none)
        #expect(zip(a.array, x).allSatisfy { ($0 - $1 * 16).length < 1e-4 })
    }

    @Test func planIsReusedOnManyBuffers() throws {
        let plan = try FFTPlan2D(height: 8, width: 8, direction: .forward)
        for seed in 1...5 as ClosedRange<UInt64> {
            let x = randomComplex(64, seed: seed)
            let out = ComplexBuffer(count: 64)
            try plan.execute(ComplexBuffer(x), out, normalization: .none)
            #expect(maxDifference(out.array, naiveDFT2D(x, height: 8, width: 8, sign: -1)) < 1e-3)
        }
    }

    @Test func wrongBuffersAreRejected() throws {
        let outOfPlace = try FFTPlan2D(height: 8, width: 8, direction: .forward)
        let inPlace = try FFTPlan2D(height: 8, width: 8, direction: .forward, inPlace: true)
        let a = ComplexBuffer(count: 65), b = ComplexBuffer(count: 64)
        #expect(throws: FFTWError.self) { try outOfPlace.execute(inPlace: b, normalization: .none) }
        #expect(throws: FFTWError.self) { try inPlace.execute(a, b, normalization: .none) }
        let small = ComplexBuffer(count: 10)
        let e = try #require(throws: FFTWError.self) { try outOfPlace.execute(small, b, normalization: .none) }
        #expect(e.reason.contains("8x8"))
        // One element past an aligned start is 8-byte aligned only.
        let misaligned = try #require(throws: FFTWError.self) {
            try outOfPlace.execute(a.baseAddress + 1, b.baseAddress, normalization: .none)
        }
        #expect(misaligned.reason.contains("alignment"))
        #expect(throws: FFTWError.self) { try FFTPlan2D(height: 0, width: 8, direction: .forward) }
    }
}

/// Wisdom and planner threads are process-global state (wisdom is keyed
/// by the thread count), so these run one at a time.
@Suite(.serialized) struct FFTWGlobalStateTests {
    @Test func inPlaceEqualsOutOfPlaceAndThreadedEqualsSerial() throws {
        let x = randomComplex(64 * 64 * 2, seed: 5)
        let outOfPlace = try FFTPlan2D(height: 64, width: 64, batch: 2, direction: .forward)
        let reference = ComplexBuffer(count: x.count)
        try outOfPlace.execute(ComplexBuffer(x), reference, normalization: .unitary)
        FFTW.setPlannerThreads(2)
        defer { FFTW.setPlannerThreads(1) }
        let threaded = try FFTPlan2D(height: 64, width: 64, batch: 2, direction: .forward, inPlace: true)
        let buffer = ComplexBuffer(x)
        try threaded.execute(inPlace: buffer, normalization: .unitary)
        #expect(zip(buffer.array, reference.array).allSatisfy { ($0 - $1).length < 1e-5 })
    }

    @Test func wisdomRoundTripAllowsWisdomOnlyPlans() throws {
        let path = NSTemporaryDirectory() + "ns-wisdom-\(UUID().uuidString)/fftwf.wisdom"
        _ = try FFTPlan2D(height: 48, width: 40, direction: .forward, rigor: .measure)
        try FFTW.exportWisdom(to: path)
        FFTW.forgetWisdom()
        #expect(throws: FFTWError.self) {
            try FFTPlan2D(height: 48, width: 40, direction: .forward, rigor: .wisdomOnly)
        }
        #expect(try FFTW.importWisdom(from: path))
        _ = try FFTPlan2D(height: 48, width: 40, direction: .forward, rigor: .wisdomOnly)
        #expect(try FFTW.importWisdom(from: path + ".missing") == false)
    }

    @Test func garbageWisdomIsAnError() throws {
        let path = NSTemporaryDirectory() + "ns-bad-\(UUID().uuidString).wisdom"
        try "not wisdom".write(toFile: path, atomically: true, encoding: .utf8)
        let error = try #require(throws: FFTWError.self) { try FFTW.importWisdom(from: path) }
        #expect(error.call.contains(path))
    }
}

/// Batched 1-D transforms over strided lines: the pieces of the pruned
/// downsampling transform.
@Suite struct FFTLinesTests {
    /// Real rows transformed one by one equal the complex transform's
    /// non-negative frequencies; strided columns equal the 2-D transform.
    @Test func realRowsAndStridedColumnsMatchTheFullTransform() throws {
        let h = 12, w = 20
        var values = [Float](repeating: 0, count: h * w)
        for i in values.indices { values[i] = Float(sin(Double(i) * 0.37) + 0.1 * Double(i % 7)) }
        let full = ComplexBuffer(values.map { Complex($0, 0) })
        try FFTPlan2D(height: h, width: w, direction: .forward, inPlace: true, rigor: .estimate).execute(inPlace: full, normalization: .none)

        let rows = try FFTLines(length: w, count: h, kind: .realToComplex, input: .init(stride: 1, distance: w),
                                output: .init(stride: 1, distance: w / 2 + 1), rigor: .estimate)
        let real = ComplexBuffer(count: rows.inputExtent)
        UnsafeMutableRawPointer(real.baseAddress).assumingMemoryBound(to: Float.self).update(from: values, count: h * w)
        let spectra = ComplexBuffer(count: rows.outputExtent)
        try rows.execute(real, spectra)
        // Every column of the row spectra, transformed down the rows in place.
        let columns = try FFTLines(length: h, count: w / 2 + 1, kind: .complex(.forward), input: .init(stride: w / 2 + 1, distance: 1),
                                   output: .init(stride: w / 2 + 1, distance: 1), inPlace: true, rigor: .estimate)
        try columns.execute(spectra, spectra)
        var worst: Float = 0
        for y in 0..<h { for x in 0...(w / 2) { worst = max(worst, (spectra[y * (w / 2 + 1) + x] - full[y * w + x]).length) } }
        #expect(worst < 1e-4, "largest difference \(worst)")
    }

    @Test func misuseIsRefusedWithTheCall() throws {
        #expect(throws: FFTWError.self) { _ = try FFTLines(length: 0, count: 1, kind: .realToComplex, input: .init(stride: 1, distance: 1),
                                                           output: .init(stride: 1, distance: 1)) }
        let p = try FFTLines(length: 8, count: 2, kind: .complex(.forward), input: .init(stride: 1, distance: 8),
                             output: .init(stride: 1, distance: 8), rigor: .estimate)
        let a = ComplexBuffer(count: 16), small = ComplexBuffer(count: 4)
        #expect(throws: FFTWError.self) { try p.execute(a, a) }       // out-of-place plan, one buffer
        #expect(throws: FFTWError.self) { try p.execute(a, small) }   // too small for 2 lines of 8
    }
}
