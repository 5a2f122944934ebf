import Foundation
@testable import Ingest
import Ingest
import Numerics
import Recon
import Simulator
import Testing

@Suite struct DetectorModelTests {
    func quietModel() -> DetectorModel {
        var m = DetectorModel()
        m.channels = 4
        m.overscan = 3
        m.readNoise = 0
        m.noisyChannel = nil
        m.spikesPerChannel = 0
        m.hotPixels = 3
        m.deadPixels = 2
        return m
    }

    /// Without random noise, every raw value is exactly offset(channel,
    /// sequence) + dark current + gain * photons, rounded; overscan holds the
    /// offset alone and dead pixels read 0.
    @Test func rawFramesFollowTheReadoutModel() throws {
        let truth = try DetectorTruth(model: quietModel(), rows: 16, columns: 32)
        let L = truth.layout
        #expect(L.rawColumns == 4 * (8 + 3))
        var rng = SeededRandom(seed: 1)
        let photons = (0..<(16 * 32)).map { _ in Float(rng.poisson(20)) }
        let raw = truth.rawFrame(photons: photons, seed: 1, stream: 0)
        var hot = 0, dead = 0
        for y in 0..<16 {
            for c in 0..<L.rawColumns {
                let (channel, s) = L.readout(row: y, rawColumn: c)
                let value = Double(raw[y * L.rawColumns + c])
                if L.isOverscan(rawColumn: c) {
                    #expect(value == truth.offset(channel: channel, sequence: s).rounded())
                    continue
                }
                let x = channel * L.columnsPerChannel + c % L.blockWidth
                #expect(L.rawColumn(ofImageColumn: x) == c)
                let p = y * 32 + x
                if truth.mask[p] & PixelMask.dead != 0 { dead += 1; #expect(value == 0); continue }
                let expected = truth.offset(channel: channel, sequence: s) + Double(truth.darkCurrent[p]) + 8 * Double(photons[p])
                if truth.mask[p] & PixelMask.hot != 0 {
                    hot += 1
                    #expect(abs(value - expected) < 6 * Double(truth.noise[p]))
                } else {
                    #expect(value == expected.rounded())
                }
            }
        }
        #expect(hot == 3 && dead == 2)
    }

    @Test func brightPixelsSaturate() throws {
        let truth = try DetectorTruth(model: quietModel(), rows: 8, columns: 8)
        let raw = truth.rawFrame(photons: [Float](repeating: 1e5, count: 64), seed: 1, stream: 0)
        let image = (0..<8).flatMap { y in (0..<8).map { x in raw[y * truth.layout.rawColumns + truth.layout.rawColumn(ofImageColumn: x)] } }
        #expect(image.filter { $0 == 65535 }.count == 64 - 2)  // all but the dead pixels
    }

    /// The readout interference shows up as lines at the recorded frequencies
    /// of each channel's readout sequence, with the recorded amplitudes.
    @Test func readoutSpikesAreTheRecordedLines() throws {
        var m = quietModel()
        m.spikesPerChannel = 2
        m.spikeAmplitude = 20
        m.darkCurrent = 0
        m.hotPixels = 0
        m.deadPixels = 0
        m.drift = 0
        let truth = try DetectorTruth(model: m, rows: 32, columns: 32)
        let L = truth.layout
        let dark = truth.rawFrame(photons: nil, seed: 3, stream: 9)
        for channel in 0..<L.channels {
            var sequence = [Double](repeating: 0, count: L.sequenceLength)
            for y in 0..<L.rows { for b in 0..<L.blockWidth {
                let c = channel * L.blockWidth + b
                sequence[L.readout(row: y, rawColumn: c).sequence] = Double(dark[y * L.rawColumns + c])
            } }
            let mean = sequence.reduce(0, +) / Double(sequence.count)
            func amplitude(_ f: Double) -> Double {
                var re = 0.0, im = 0.0
                for (s, v) in sequence.enumerated() {
                    let phase = 2 * Double.pi * f * Double(s) / Double(sequence.count)
                    re += (v - mean) * cos(phase)
                    im -= (v - mean) * sin(phase)
                }
                return 2 * hypot(re, im) / Double(sequence.count)
            }
            // The lines lie between bins: a joint least-squares fit of a
            // constant and a cosine and sine per recorded line gives their amplitudes.
            let lines = truth.spikes[channel]
            func basis(_ s: Int) -> [Double] {
                var out = [1.0]
                for line in lines {
                    let phase = 2 * Double.pi * line.frequency * Double(s) / Double(L.sequenceLength)
                    out += [cos(phase), sin(phase)]
                }
                return out
            }
            let n = 1 + 2 * lines.count
            var g = [Double](repeating: 0, count: n * n), r = [Double](repeating: 0, count: n)
            for (s, v) in sequence.enumerated() {
                let phi = basis(s)
                for i in 0..<n {
                    r[i] += phi[i] * v
                    for j in 0..<n { g[i * n + j] += phi[i] * phi[j] }
                }
            }
            let x = try #require(solve(g, r, n))
            for (l, line) in lines.enumerated() {
                #expect(line.frequency >= Double(L.sequenceLength / 4) && line.frequency < Double(L.sequenceLength / 2))
                #expect(abs(hypot(x[1 + 2 * l], x[2 + 2 * l]) - line.amplitude) < 1.0)
            }
            // Away from the lines there is only rounding noise.
            let quiet = (1..<(L.sequenceLength / 2)).first { k in !truth.spikes[channel].contains { abs($0.frequency - Double(k)) < 40 } }!
            #expect(amplitude(Double(quiet)) < 0.5)
        }
    }

    @Test func badDetectorSettingsAreNamed() {
        var m = DetectorModel()
        m.channels = 5
        m.noisyChannel = 9
        m.gain = 0
        let problems = m.problems(rows: 64, columns: 64)
        #expect(problems.contains { $0.contains("do not split into 5 readout channels") })
        #expect(problems.contains { $0.contains("gain") })
        #expect(problems.contains { $0.contains("noisy channel 9") })
    }
}
