import Foundation
@testable import Ingest
import Numerics
import Recon
import Testing

@Suite struct OverscanLinesTests {
    /// Overscan samples of one channel: lines at the given frequencies (cycles
    /// per readout, amplitude, phase) plus Gaussian noise.
    static func channel(rows: Int, blockWidth: Int, overscan: Int, lines: [(Double, Double, Double)],
                        noise: Double) -> (OverscanLines, [Double]) {
        var rng = SeededRandom(seed: 11, stream: 3)
        let n = Double(rows * blockWidth), first = blockWidth - overscan
        var samples: [Double] = []
        for y in 0..<rows { for m in 0..<overscan {
            let s = Double(y * blockWidth + first + m)
            samples.append(lines.reduce(noise * rng.normal()) { $0 + $1.1 * sin(2 * Double.pi * $1.0 * s / n + $1.2) })
        } }
        return (OverscanLines(rows: rows, blockWidth: blockWidth, first: first, samples: samples), samples)
    }

    /// The Goertzel transform and the closed-form position sums equal direct
    /// sums (the transform to single precision) (row counts that do and do not split into the four segments, one
    /// and two lane groups of columns).
    @Test(arguments: [(64, 3), (67, 5), (3, 4)]) func transformsEqualDirectSums(rows: Int, overscan: Int) throws {
        let bw = 10 + overscan
        let (f, samples) = Self.channel(rows: rows, blockWidth: bw, overscan: overscan, lines: [(101.3, 5, 0.4)], noise: 1)
        for omega in [0.0, 0.37, 1.9, 2 * Double.pi * 101.3 / Double(rows * bw), 3.1] {
            var direct = Complex<Double>.zero, ones = Complex<Double>.zero
            for y in 0..<rows { for m in 0..<overscan {
                let s = Double(y * bw + 10 + m), v = samples[y * overscan + m]
                direct += Complex(v * cos(omega * s), -v * sin(omega * s))
                ones += Complex(cos(omega * s), -sin(omega * s))
            } }
            // Single-precision recurrences: within 1e-5 of the sum of magnitudes.
            let scale = samples.reduce(0) { $0 + abs($1) }
            #expect((f.transform(omega) - direct).length < 1e-5 * scale, "omega \(omega)")
            #expect((f.positions(omega) - ones).length < 1e-9 * max(1, ones.length), "omega \(omega)")
        }
    }

    /// Lines between bins are found at their frequencies with their amplitudes,
    /// from guesses a bin away.
    @Test(arguments: [1, 4]) func linesBetweenBinsAreFound(overscan: Int) throws {
        let rows = 1024, bw = 64 + overscan, n = Double(rows * bw)
        let truth: [(Double, Double, Double)] = [(20_000.37, 6, 0.3), (27_123.5, 3, 2.0), (31_000.81, 9, -1.0)]
        let (f, _) = Self.channel(rows: rows, blockWidth: bw, overscan: overscan, lines: truth, noise: 3)
        let bin = 2 * Double.pi / n
        let guesses = [31_001.0, 20_000.0, 27_123.0].map { $0 * bin }
        let found = f.refine(guesses.map { ($0, 1.5) }, significance: 25)
        #expect(found.count == 3)
        for (line, t) in zip(found, [truth[2], truth[0], truth[1]]) {
            let cycles = line.omega / bin, amplitude = hypot(line.a, line.b)
            print("EXPERIMENT found \(cycles) amplitude \(amplitude) for \(t)")
            #expect(abs(cycles - t.0) < 0.05, "\(cycles) cycles for \(t.0)")
            #expect(abs(amplitude - t.1) < 0.3, "amplitude \(amplitude) for \(t.1)")
        }
    }
}

@Suite struct SelectionTests {
    /// Hoare's selection returns what a sort puts at k, ties and all.
    @Test func selectionEqualsSorting() {
        var rng = SeededRandom(seed: 5, stream: 1)
        for count in [1, 2, 7, 100, 2049] {
            let values = (0..<count).map { _ in Float((rng.uniform() * 20).rounded()) }
            for k in Set([0, count / 2, count - 1]) {
                var copy = values
                let chosen = copy.withUnsafeMutableBufferPointer { select(k, in: $0) }
                #expect(chosen == values.sorted()[k], "k \(k) of \(count)")
            }
        }
    }
}
