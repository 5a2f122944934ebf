import Foundation
import Numerics
import Recon
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
            func amplitude(_ k: Int) -> Double {
                var re = 0.0, im = 0.0
                for (s, v) in sequence.enumerated() {
                    let phase = 2 * Double.pi * Double(k * s) / Double(sequence.count)
                    re += (v - mean) * cos(phase)
                    im -= (v - mean) * sin(phase)
                }
                return 2 * hypot(re, im) / Double(sequence.count)
            }
            for line in truth.spikes[channel] {
                #expect(line.frequency >= L.sequenceLength / 4 && line.frequency < L.sequenceLength / 2)
                #expect(abs(amplitude(line.frequency) - line.amplitude) < 1.0)
            }
            // Away from the lines there is only rounding noise.
            let quiet = (1..<(L.sequenceLength / 2)).first { k in !truth.spikes[channel].contains { abs($0.frequency - k) < 2 } }!
            #expect(amplitude(quiet) < 0.5)
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
