import Foundation
import Ingest
import Recon

/// A fast-CCD readout model for raw frames, with the ground truth of every
/// artefact kept so preprocessing can be checked against it.
public struct DetectorModel: Codable, Equatable, Sendable {
    public var channels: Int = 16
    public var overscan: Int = 4
    /// ADU per photon.
    public var gain: Double = 8
    /// Mean channel offset and its spread between channels, ADU.
    public var offset: Double = 1000
    public var offsetSpread: Double = 150
    /// Largest linear and quadratic offset drift over one readout, ADU.
    public var drift: Double = 40
    /// Read noise per pixel, ADU (the noisy channel gets `noisyChannelNoise`).
    public var readNoise: Double = 3
    public var noisyChannel: Int? = 5
    public var noisyChannelNoise: Double = 30
    /// Mean dark current per frame, ADU.
    public var darkCurrent: Double = 2
    public var hotPixels: Int = 20
    public var hotPixelCurrent: Double = 400
    public var deadPixels: Int = 20
    /// Narrow-band readout interference: lines per channel, amplitude in ADU.
    public var spikesPerChannel: Int = 3
    public var spikeAmplitude: Double = 6
    /// Largest ADU value (saturation).
    public var saturation: Double = 65535
    public var seed: UInt64 = 7

    public init() {}

    public func layout(rows: Int, columns: Int) -> ReadoutLayout {
        ReadoutLayout(rows: rows, columns: columns, channels: channels, overscan: overscan)
    }

    public func problems(rows: Int, columns: Int) -> [String] {
        var out = layout(rows: rows, columns: columns).problems()
        if !(gain > 0) { out.append("gain must be positive ADU per photon, got \(gain)") }
        if !(readNoise >= 0 && noisyChannelNoise >= 0 && darkCurrent >= 0 && spikeAmplitude >= 0) {
            out.append("noise, dark current and spike amplitudes must be at least 0")
        }
        if let c = noisyChannel, c < 0 || c >= channels { out.append("noisy channel \(c) is not one of 0..<\(channels)") }
        if hotPixels < 0 || deadPixels < 0 || hotPixels + deadPixels > rows * columns {
            out.append("hot (\(hotPixels)) and dead (\(deadPixels)) pixel counts do not fit the detector")
        }
        if !(saturation > offset + offsetSpread + drift) { out.append("saturation \(saturation) ADU is below the offsets") }
        return out
    }
}

/// The artefacts of one simulated detector, drawn once from its seed.
public struct DetectorTruth: Sendable {
    public let layout: ReadoutLayout
    public let model: DetectorModel
    /// Per channel: offset a + b s + c s^2 over the normalized readout sequence s in [0, 1).
    public let offsetCoefficients: [[Double]]
    /// Per image pixel, dark current in ADU per frame.
    public let darkCurrent: [Float]
    /// Per image pixel: read noise in ADU.
    public let noise: [Float]
    /// CXI mask of the injected bad pixels (hot, dead, noisy channel).
    public let mask: [UInt32]
    /// Per channel: interference lines as (cycles per readout, amplitude ADU).
    /// Frequencies are not whole cycles per readout: a real line's is not
    /// (a cleaner that assumed so would fit the simulator, not detectors).
    public let spikes: [[(frequency: Double, amplitude: Double)]]

    public init(model: DetectorModel, rows: Int, columns: Int) throws {
        let problems = model.problems(rows: rows, columns: columns)
        guard problems.isEmpty else { throw SimulationError.invalid(problems.joined(separator: "; ")) }
        self.model = model
        layout = model.layout(rows: rows, columns: columns)
        var rng = SeededRandom(seed: model.seed, stream: 0x4445_5445)
        offsetCoefficients = (0..<model.channels).map { _ in
            [model.offset + model.offsetSpread * (rng.uniform() * 2 - 1),
             model.drift * (rng.uniform() * 2 - 1), model.drift * (rng.uniform() * 2 - 1) / 2]
        }
        let n = rows * columns
        var dark = (0..<n).map { _ in Float(model.darkCurrent * (0.5 + rng.uniform())) }
        var noise = [Float](repeating: Float(model.readNoise), count: n)
        var mask = [UInt32](repeating: 0, count: n)
        if let c = model.noisyChannel {
            let cw = layout.columnsPerChannel
            for y in 0..<rows { for x in (c * cw)..<((c + 1) * cw) {
                noise[y * columns + x] = Float(model.noisyChannelNoise)
                mask[y * columns + x] |= PixelMask.noisy
            } }
        }
        var chosen = Set<Int>()
        func pick() -> Int {
            while true {
                let p = Int(rng.next() % UInt64(n))
                if chosen.insert(p).inserted { return p }
            }
        }
        for _ in 0..<model.hotPixels {
            let p = pick()
            dark[p] = Float(model.hotPixelCurrent * (0.5 + rng.uniform()))
            noise[p] = max(noise[p], Float(model.hotPixelCurrent) / 20)
            mask[p] |= PixelMask.hot
        }
        for _ in 0..<model.deadPixels { mask[pick()] |= PixelMask.dead }
        darkCurrent = dark
        self.noise = noise
        self.mask = mask
        // Lines in the upper half of the readout spectrum, where diffraction has no power.
        let length = layout.sequenceLength
        spikes = (0..<model.channels).map { _ in
            (0..<model.spikesPerChannel).map { _ in
                (Double(length) * (0.25 + 0.25 * rng.uniform()), model.spikeAmplitude * (0.5 + rng.uniform()))
            }
        }
    }

    /// Offset of `channel` at readout sequence index `s`.
    @inlinable public func offset(channel: Int, sequence s: Int) -> Double {
        let t = Double(s) / Double(layout.sequenceLength)
        let c = offsetCoefficients[channel]
        return c[0] + c[1] * t + c[2] * t * t
    }

    /// A raw UInt16 frame (rows x rawColumns) from photon counts per image
    /// pixel (nil: a dark frame). `stream` makes the noise of each frame independent.
    public func rawFrame(photons: [Float]?, seed: UInt64, stream: UInt64) -> [UInt16] {
        var rng = SeededRandom(seed: seed, stream: stream)
        let L = layout
        var raw = [UInt16](repeating: 0, count: L.rawPixels)
        // Interference phases change from frame to frame.
        let phases = spikes.map { lines in lines.map { _ in rng.uniform() * 2 * Double.pi } }
        let length = Double(L.sequenceLength)
        for y in 0..<L.rows {
            for c in 0..<L.rawColumns {
                let (channel, s) = L.readout(row: y, rawColumn: c)
                var value = offset(channel: channel, sequence: s)
                for (i, line) in spikes[channel].enumerated() {
                    value += line.amplitude * sin(2 * Double.pi * line.frequency * Double(s) / length + phases[channel][i])
                }
                if L.isOverscan(rawColumn: c) {
                    value += model.readNoise * rng.normal()
                } else {
                    let x = channel * L.columnsPerChannel + c % L.blockWidth
                    let p = y * L.columns + x
                    if mask[p] & PixelMask.dead != 0 {
                        raw[y * L.rawColumns + c] = 0
                        continue
                    }
                    value += Double(darkCurrent[p]) + Double(noise[p]) * rng.normal()
                    if let photons { value += model.gain * Double(photons[p]) }
                }
                raw[y * L.rawColumns + c] = UInt16(min(model.saturation, max(0, value.rounded())))
            }
        }
        return raw
    }
}
