import Foundation
@testable import Ingest
import Ingest
import Numerics
import Recon
import Simulator
import Testing

/// A raw fast-CCD scan with every artefact on, and its truth.
struct RawFixture {
    let sim: Simulation
    let truth: DetectorTruth
    let layout: ReadoutLayout
    let darks: [[Float]]

    init(frameSize: Int = 64, darkFrames: Int = 24, photons: Double = 1e6, overscan: Int = 4) throws {
        var config = smallConfig(frameSize: frameSize, scan: .raster(rows: 3, columns: 3), poisson: true)
        config.photonsPerFrame = photons
        var model = DetectorModel()
        model.channels = 8
        model.noisyChannel = 5
        model.hotPixels = 6
        model.deadPixels = 6
        model.overscan = overscan
        config.detector = model
        config.darkFrames = darkFrames
        let sim = try Simulation(config)
        self.sim = sim
        truth = try #require(sim.detector)
        layout = truth.layout
        darks = (0..<darkFrames).map { (sim.darkFrame($0) ?? []).map(Float.init) }
    }

    func darkStatistics() throws -> DarkStatistics {
        var stats = DarkStatistics(pixels: layout.rawPixels, readout: layout)
        for d in darks { try stats.add(d) }
        return stats
    }

    func cleaner(_ options: PreprocessOptions = PreprocessOptions(), dark: Bool = true) throws -> FrameCleaner {
        let n = Double(sim.frameSize)
        return try FrameCleaner(layout: layout, gain: truth.model.gain, dark: dark ? try darkStatistics() : nil, fileMask: nil,
                                centre: (n / 2, n / 2), options: options)
    }
}

@Suite struct PreprocessTests {
    /// Welford per rank merged with Chan's formula equals one pass over all darks.
    @Test func mergedDarkStatisticsEqualOnePass() throws {
        let f = try RawFixture(frameSize: 64, darkFrames: 7)
        let whole = try f.darkStatistics()
        var a = DarkStatistics(pixels: f.layout.rawPixels, readout: f.layout), b = DarkStatistics(pixels: f.layout.rawPixels, readout: f.layout)
        for (i, d) in f.darks.enumerated() { if i < 3 { try a.add(d) } else { try b.add(d) } }
        let merged = try a.merged(over: TwoRankSum(partner: b))
        #expect(merged.count == 7)
        for i in stride(from: 0, to: whole.pixels, by: 7) {
            #expect(abs(merged.mean[i] - whole.mean[i]) < 1e-9 * max(1, abs(whole.mean[i])))
            #expect(abs(merged.m2[i] - whole.m2[i]) < 1e-6 * max(1, whole.m2[i]))
        }
        // The readout power spectra add up too (same transforms, so exactly).
        #expect(!whole.readoutPower.isEmpty && merged.readoutPower.count == whole.readoutPower.count)
        for (m, w) in zip(merged.readoutPower, whole.readoutPower) { #expect(abs(m - w) <= 1e-9 * max(1, w)) }
        #expect(throws: PreprocessError.self) { try a.add([1, 2, 3]) }
    }

    /// Every injected hot and dead pixel and the noisy channel are flagged,
    /// and almost nothing else.
    @Test func darkMaskCatchesEveryInjectedDefect() throws {
        let f = try RawFixture()
        let mask = try f.darkStatistics().mask(layout: f.layout, threshold: 5)
        for (i, bits) in f.truth.mask.enumerated() where bits != 0 {
            #expect(mask[i] != 0, "pixel \(i) with injected bits \(bits) not flagged")
            if bits & PixelMask.dead != 0 { #expect(mask[i] & PixelMask.dead != 0) }
            if bits & PixelMask.noisy != 0 { #expect(mask[i] & PixelMask.noisy != 0) }
        }
        let falseAlarms = zip(mask, f.truth.mask).filter { $0 != 0 && $1 == 0 }.count
        #expect(falseAlarms <= mask.count / 500, "\(falseAlarms) good pixels flagged")
    }

    /// Clean frames equal the simulator's photon counts up to the read noise
    /// (in photons) and thresholding, so against the noise-free intensities the
    /// residuals follow the Poisson expectation: chi^2 per pixel near 1.
    @Test func cleanFramesMatchTheTruthWithinPhotonNoise() throws {
        let f = try RawFixture()
        let cleaner = try f.cleaner()
        let readNoise = f.truth.model.readNoise / f.truth.model.gain
        var chi2 = 0.0, pixels = 0, photonError = 0.0, photonTotal = 0.0
        for i in 0..<f.sim.frameCount {
            let frame = f.sim.frame(i)
            let clean = try cleaner.clean(raw: try #require(frame.raw).map(Float.init))
            for p in 0..<clean.photons.count where cleaner.imageMask[p] == 0 {
                let expected = Double(frame.clean.values[p])
                let d = Double(clean.photons[p]) - expected
                chi2 += d * d / (expected + readNoise * readNoise + 0.25)
                pixels += 1
                photonError += abs(Double(clean.photons[p]) - Double(frame.photons.values[p]))
                photonTotal += Double(frame.photons.values[p])
            }
        }
        let perPixel = chi2 / Double(pixels)
        #expect(perPixel > 0.5 && perPixel < 1.5, "chi^2 per pixel \(perPixel)")
        #expect(photonError / photonTotal < 0.02, "photon error \(photonError / photonTotal)")
    }

    /// Without darks (the documented fallback: no dark subtraction), the
    /// offsets still come from the overscan: the photons stay close to the
    /// truth, a little high by the dark current left in.
    @Test func framesWithoutDarksKeepTheirPhotons() throws {
        let f = try RawFixture()
        let cleaner = try f.cleaner(dark: false)
        var error = 0.0, total = 0.0
        for i in 0..<f.sim.frameCount {
            let frame = f.sim.frame(i)
            let clean = try cleaner.clean(raw: try #require(frame.raw).map(Float.init))
            for p in 0..<clean.photons.count where cleaner.imageMask[p] == 0 {
                error += abs(Double(clean.photons[p]) - Double(frame.clean.values[p]))
                total += Double(frame.clean.values[p])
            }
        }
        #expect(total > 0 && error / total < 0.1, "photon error \(error / total) without darks")
    }

    /// Readout interference is removed: on dark frames the cleaned
    /// background has no line left in its readout spectrum.
    @Test func interferenceLinesAreRemoved() throws {
        let f = try RawFixture()
        var without = PreprocessOptions()
        without.removeSpikes = false
        without.photonThreshold = 0
        var with = without
        with.removeSpikes = true
        let frame = try #require(f.sim.frame(4).raw).map(Float.init)
        func residualRMS(_ options: PreprocessOptions) throws -> Double {
            let clean = try f.cleaner(options).clean(raw: frame)
            let truth = f.sim.frame(4).photons.values
            var s = 0.0, n = 0
            for p in 0..<truth.count where f.truth.mask[p] == 0 && truth[p] == 0 {
                s += Double(clean.photons[p] * clean.photons[p]); n += 1
            }
            return (s / Double(n)).squareRoot()
        }
        let a = try residualRMS(without), b = try residualRMS(with)
        #expect(b < 0.65 * a, "background rms \(a) -> \(b) photons")
    }

    /// Lines between readout bins (as real ones are) are removed to a small
    /// fraction of their amplitude, not merely reduced: the background left
    /// after cleaning is within 20% (in quadrature) of what it is on the same
    /// frames simulated without interference, when the lines are fitted on
    /// the overscan (4 columns of 128 rows). With too little overscan for
    /// that (1 column), the bins are fitted as found, and less goes.
    @Test(arguments: [(4, 0.2), (1, 0.7)]) func interferenceBetweenBinsIsRemoved(overscan: Int, share: Double) throws {
        func backgroundRMS(spikes: Int, remove: Bool) throws -> Double {
            var config = smallConfig(frameSize: 128, scan: .raster(rows: 3, columns: 3), poisson: true)
            config.photonsPerFrame = 1e6
            var model = DetectorModel()
            model.channels = 8
            model.spikesPerChannel = spikes
            model.overscan = overscan
            config.detector = model
            config.darkFrames = 16
            let sim = try Simulation(config)
            let truth = try #require(sim.detector)
            var stats = DarkStatistics(pixels: truth.layout.rawPixels)
            for i in 0..<16 { try stats.add(try #require(sim.darkFrame(i)).map(Float.init)) }
            var options = PreprocessOptions()
            options.photonThreshold = 0
            options.removeSpikes = remove
            let cleaner = try FrameCleaner(layout: truth.layout, gain: model.gain, dark: stats, fileMask: nil,
                                           centre: (64, 64), options: options)
            var s = 0.0, n = 0
            for f in 0..<sim.frameCount {
                let clean = try cleaner.clean(raw: try #require(sim.frame(f).raw).map(Float.init))
                let photons = sim.frame(f).photons.values
                for p in photons.indices where truth.mask[p] == 0 && photons[p] == 0 {
                    s += Double(clean.photons[p] * clean.photons[p])
                    n += 1
                }
            }
            return (s / Double(n)).squareRoot()
        }
        let floor = try backgroundRMS(spikes: 0, remove: true)
        let before = try backgroundRMS(spikes: 3, remove: false), after = try backgroundRMS(spikes: 3, remove: true)
        let lines = (before * before - floor * floor).squareRoot(), left = max(0, after * after - floor * floor).squareRoot()
        #expect(left < share * lines, "lines \(lines) photons rms, \(left) left (background \(floor) -> \(after))")
    }

    /// The dark frames (all background) give each channel's lines at their
    /// own frequencies (within 0.05 cycles per readout), and nothing else:
    /// no side lobe, no harmonic.
    @Test func darkFramesGiveTheLines() throws {
        var config = smallConfig(frameSize: 128, scan: .raster(rows: 2, columns: 2), poisson: true)
        var model = DetectorModel()
        model.channels = 8
        config.detector = model
        config.darkFrames = 16
        let sim = try Simulation(config)
        let truth = try #require(sim.detector)
        var stats = DarkStatistics(pixels: truth.layout.rawPixels, readout: truth.layout)
        for i in 0..<16 { try stats.add(try #require(sim.darkFrame(i)).map(Float.init)) }
        let lines = stats.interferenceLines(threshold: 5, band: 0.25, maxPerChannel: 8)
        let cycles = Double(truth.layout.sequenceLength) / (2 * Double.pi)
        #expect(lines.count == model.channels)
        // (The noisy channel, 10x the read noise, is masked whole.)
        for (ch, found) in lines.enumerated() where ch != model.noisyChannel {
            let expected = truth.spikes[ch].map(\.frequency).sorted(), got = found.map { $0 * cycles }.sorted()
            #expect(got.count == expected.count, "channel \(ch): \(got) for \(expected)")
            for (g, e) in zip(got, expected) { #expect(abs(g - e) < 0.05, "channel \(ch): \(g) cycles for \(e)") }
        }
    }

    /// In a frame lit almost everywhere a row's background is little more
    /// than its overscan, and a line's copies through the row rate can
    /// outshine it in the frame's spectrum; the lines of the darks are tried
    /// first, so the lines still go (to within 20% in quadrature of the
    /// same frames without interference).
    @Test func linesFromTheDarksHoldInLitFrames() throws {
        func errorRMS(spikes: Int, remove: Bool, darkLines: Bool) throws -> Double {
            var model = DetectorModel()
            model.channels = 8
            model.spikesPerChannel = spikes
            let truth = try DetectorTruth(model: model, rows: 128, columns: 128)
            let layout = truth.layout
            var photons = [Float](repeating: 0, count: 128 * 128)
            for y in 0..<128 { for x in 0..<128 {
                let r = hypot(Double(y) - 64, Double(x) - 64)
                photons[y * 128 + x] = Float(r < 12.8 ? 400 : 400 * pow(12.8 / r, 3))
            } }
            var dark = DarkStatistics(pixels: layout.rawPixels, readout: darkLines ? layout : nil)
            for k in 0..<16 { try dark.add(truth.rawFrame(photons: nil, seed: 12, stream: UInt64(k)).map(Float.init)) }
            var options = PreprocessOptions()
            options.photonThreshold = 0
            options.removeSpikes = remove
            let cleaner = try FrameCleaner(layout: layout, gain: model.gain, dark: dark, fileMask: nil, centre: (64, 64), options: options)
            var s = 0.0, n = 0
            for f in 0..<4 {
                let clean = try cleaner.clean(raw: truth.rawFrame(photons: photons, seed: 11, stream: UInt64(f)).map(Float.init))
                for p in photons.indices where cleaner.imageMask[p] == 0 {
                    let d = Double(clean.photons[p] - photons[p])
                    s += d * d
                    n += 1
                }
            }
            return (s / Double(n)).squareRoot()
        }
        let floor = try errorRMS(spikes: 0, remove: true, darkLines: true)
        let before = try errorRMS(spikes: 3, remove: false, darkLines: true)
        let after = try errorRMS(spikes: 3, remove: true, darkLines: true)
        let frameOnly = try errorRMS(spikes: 3, remove: true, darkLines: false)
        func left(_ rms: Double) -> Double { max(0, rms * rms - floor * floor).squareRoot() }
        let lines = left(before)
        #expect(left(after) < 0.2 * lines, "lines \(lines) photons rms, \(left(after)) left with the darks' lines, \(left(frameOnly)) without")
    }

    /// Where the darks' lines explain the overscan, the frame's readout
    /// spectrum is not searched; a line the darks did not show (one that
    /// started after them) leaves power in the overscan, so the frame is
    /// searched and that line goes too (to within 20% of its rms).
    @Test func aLineTheDarksMissedIsSearchedFor() throws {
        var model = DetectorModel()
        model.channels = 8
        model.spikesPerChannel = 2
        let truth = try DetectorTruth(model: model, rows: 128, columns: 128)
        let layout = truth.layout
        var photons = [Float](repeating: 0, count: 128 * 128)
        for y in 0..<128 { for x in 0..<128 where hypot(Double(y) - 64, Double(x) - 64) < 12.8 { photons[y * 128 + x] = 400 } }
        var dark = DarkStatistics(pixels: layout.rawPixels, readout: layout)
        for k in 0..<16 { try dark.add(truth.rawFrame(photons: nil, seed: 12, stream: UInt64(k)).map(Float.init)) }
        var options = PreprocessOptions()
        options.photonThreshold = 0
        let plain = try FrameCleaner(layout: layout, gain: model.gain, dark: dark, fileMask: nil, centre: (64, 64), options: options)
        let later = try FrameCleaner(layout: layout, gain: model.gain, dark: dark, fileMask: nil, centre: (64, 64), options: options)
        var always = options
        always.searchEveryFrame = true
        let searching = try FrameCleaner(layout: layout, gain: model.gain, dark: dark, fileMask: nil, centre: (64, 64), options: always)
        // Between bins, as a real line is, and away from the darks' lines'
        // copies through the row rate (0.05 cycles per sample here), which
        // 4 overscan samples a row cannot tell from them.
        let length = Double(layout.sequenceLength), amplitude = 8.0
        let omega = 2 * Double.pi * ((0.392 * length).rounded() + 0.3) / length
        var s = 0.0, n = 0, searchedApart = 0.0
        for f in 0..<4 {
            let raw = truth.rawFrame(photons: photons, seed: 11, stream: UInt64(f)).map(Float.init)
            var withLine = raw
            for y in 0..<layout.rows { for c in 0..<layout.rawColumns {
                let sequence = layout.readout(row: y, rawColumn: c).sequence
                withLine[y * layout.rawColumns + c] += Float(amplitude * cos(omega * Double(sequence) + 1))
            } }
            let a = try plain.clean(raw: raw), b = try later.clean(raw: withLine), c = try searching.clean(raw: raw)
            for p in photons.indices where plain.imageMask[p] == 0 {
                let d = Double(b.photons[p] - a.photons[p]), e = Double(c.photons[p] - a.photons[p])
                s += d * d
                searchedApart += e * e
                n += 1
            }
        }
        #expect(plain.searchedFrames == 0, "the darks' lines explain every frame")
        #expect(later.searchedFrames == 4, "a line the darks did not show is searched for")
        let line = amplitude / model.gain / 2.0.squareRoot(), left = (s / Double(n)).squareRoot()
        #expect(left < 0.2 * line, "a line of \(line) photons rms, \(left) left")
        // Searched whether or not the darks explain it, the same frame comes out nearly the same.
        #expect(searching.searchedFrames == 4)
        let apart = (searchedApart / Double(n)).squareRoot()
        #expect(apart < 0.2 * line, "searched and darks-explained frames \(apart) photons rms apart")
    }

    /// FFT downsampling conserves photons and maps the centre to the centre.
    @Test func downsamplingConservesPhotons() throws {
        let f = try RawFixture()
        var options = PreprocessOptions()
        options.outputSize = 32
        let cleaner = try f.cleaner(options)
        let full = try f.cleaner().clean(raw: try #require(f.sim.frame(4).raw).map(Float.init))
        let small = try cleaner.clean(raw: try #require(f.sim.frame(4).raw).map(Float.init))
        #expect(small.photons.count == 32 * 32)
        let a = full.photons.reduce(0, +), b = small.photons.reduce(0, +)
        #expect(abs(a - b) / a < 0.03, "\(a) -> \(b)")
        func centreOfMass(_ v: [Float], _ n: Int) -> (Double, Double) {
            var s = 0.0, y = 0.0, x = 0.0
            for i in v.indices { s += Double(v[i]); y += Double(v[i]) * Double(i / n); x += Double(v[i]) * Double(i % n) }
            return (y / s, x / s)
        }
        let (fy, fx) = centreOfMass(full.photons, 64), (sy, sx) = centreOfMass(small.photons, 32)
        #expect(abs(sy - fy / 2) < 0.3 && abs(sx - fx / 2) < 0.3, "(\(fy), \(fx)) -> (\(sy), \(sx))")
        #expect(cleaner.outputPixelSize(60e-6) == 120e-6)
    }

    /// A crop window that reaches past the detector's corner: the part inside
    /// is the clean image, the rest 0, and its FFT downsampling equals a
    /// direct band-limited transform of that crop.
    @Test func cropPastTheCornerIsPlacedExactly() throws {
        let f = try RawFixture()
        let raw = try #require(f.sim.frame(4).raw).map(Float.init)
        let full = try f.cleaner().clean(raw: raw).photons
        let n = f.sim.frameSize
        func cleaner(_ output: Int?) throws -> FrameCleaner {
            var o = PreprocessOptions()
            o.cropSize = 32
            o.outputSize = output
            return try FrameCleaner(layout: f.layout, gain: f.truth.model.gain, dark: try f.darkStatistics(), fileMask: nil,
                                    centre: (8, 8), options: o)
        }
        let crop = try cleaner(nil), cropped = try crop.clean(raw: raw).photons
        let origin = crop.cropOrigin
        #expect(origin.y < 0 && origin.x < 0)
        for y in 0..<32 {
            for x in 0..<32 {
                let (iy, ix) = (origin.y + y, origin.x + x)
                let expected: Float = iy >= 0 && ix >= 0 && iy < n && ix < n ? full[iy * n + ix] : 0
                #expect(cropped[y * 32 + x] == expected, "(\(y), \(x))")
            }
        }
        // Downsampled: the band |k| < 8 of the crop's transform, transformed back
        // (a direct DFT here), real part, negatives and masked pixels to 0.
        let resampler = try cleaner(16), small = try resampler.clean(raw: raw).photons
        var spectrum = [(Double, Double)](repeating: (0, 0), count: 16 * 16)
        for ky in -8..<8 {
            for kx in -8..<8 {
                var re = 0.0, im = 0.0
                for y in 0..<32 {
                    for x in 0..<32 {
                        let phase = -2 * Double.pi * Double(ky * y + kx * x) / 32
                        re += Double(cropped[y * 32 + x]) * cos(phase)
                        im += Double(cropped[y * 32 + x]) * sin(phase)
                    }
                }
                spectrum[(ky + 8) * 16 + kx + 8] = (re, im)
            }
        }
        let scale = Double(small.max() ?? 1)
        for y in 0..<16 {
            for x in 0..<16 where resampler.outputMask[y * 16 + x] == 0 {
                var v = 0.0
                for ky in -8..<8 {
                    for kx in -8..<8 {
                        let phase = 2 * Double.pi * Double(ky * y + kx * x) / 16
                        let (re, im) = spectrum[(ky + 8) * 16 + kx + 8]
                        v += re * cos(phase) - im * sin(phase)
                    }
                }
                let expected = max(0, v / 256)
                #expect(abs(Double(small[y * 16 + x]) - expected) < 1e-4 * scale, "(\(y), \(x)): \(small[y * 16 + x]) vs \(expected)")
            }
        }
    }

    /// A measured beamstop map is divided out: under a 10% stop the clean
    /// frames come back to the unattenuated intensities (with 10x the noise).
    @Test func beamstopMapIsDividedOut() throws {
        var config = smallConfig(frameSize: 64, scan: .raster(rows: 3, columns: 3), poisson: true)
        config.detector = DetectorModel()
        config.darkFrames = 16
        config.beamstop = Beamstop(radius: 6, transmission: 0.1)
        // Enough photons that the attenuated ones stand well above the read noise.
        config.photonsPerFrame = 1e7
        let sim = try Simulation(config)
        let truth = try #require(sim.detector)
        var dark = DarkStatistics(pixels: truth.layout.rawPixels)
        for k in 0..<16 { try dark.add((sim.darkFrame(k) ?? []).map(Float.init)) }
        let map = try #require(config.beamstop).map(frameSize: 64).values
        let cleaner = try FrameCleaner(layout: truth.layout, gain: truth.model.gain, dark: dark, fileMask: nil,
                                       centre: (32, 32), options: PreprocessOptions(), beamstopMap: map)
        var measured = 0.0, expected = 0.0
        for i in 0..<sim.frameCount {
            let frame = sim.frame(i)
            let clean = try cleaner.clean(raw: try #require(frame.raw).map(Float.init))
            for p in map.indices where map[p] < 1 && cleaner.imageMask[p] == 0 {
                measured += Double(clean.photons[p])
                expected += Double(frame.clean.values[p])
            }
        }
        #expect(expected > 0 && abs(measured / expected - 1) < 0.1, "\(measured) vs \(expected)")
        #expect(throws: PreprocessError.self) {
            try FrameCleaner(layout: truth.layout, gain: 8, dark: nil, fileMask: nil, centre: (32, 32),
                             options: PreprocessOptions(), beamstopMap: [1, 1, 1])
        }
    }

    @Test func badInputGetsClearErrors() throws {
        let f = try RawFixture(frameSize: 64, darkFrames: 3)
        #expect(throws: PreprocessError.self) { try f.cleaner().clean(raw: [1, 2, 3]) }
        var o = PreprocessOptions()
        o.cropSize = 16
        o.outputSize = 24
        #expect(throws: PreprocessError.self) { try f.cleaner(o) }
        #expect(throws: PreprocessError.self) {
            try FrameCleaner(layout: f.layout, gain: nil, dark: nil, fileMask: nil, centre: (32, 32), options: PreprocessOptions())
        }
        #expect(throws: PreprocessError.self) {
            try FrameCleaner(layout: f.layout, gain: 8, dark: nil, fileMask: [0, 0], centre: (32, 32), options: PreprocessOptions())
        }
        // NaN reads as 0 and is counted, never silently.
        var raw = try #require(f.sim.frame(0).raw).map(Float.init)
        raw[5] = .nan
        #expect(try f.cleaner().clean(raw: raw).nonFinite == 1)
    }
}

/// Two ranks' sums in one process: this rank's values plus what a partner
/// holding `partner` would contribute to each of the merge's two sums.
final class TwoRankSum: Collective {
    let partner: DarkStatistics
    private var globalMean: [Double]? = nil
    private var powerSummed = false
    init(partner: DarkStatistics) { self.partner = partner }
    var rank: Int { 0 }
    var size: Int { 2 }
    func sum(_ values: UnsafeMutableBufferPointer<Double>) throws {
        if let mean = globalMean {
            if !partner.readoutPower.isEmpty && !powerSummed {
                // Second sum, with a layout: the readout power spectra.
                powerSummed = true
                for i in values.indices { values[i] += partner.readoutPower[i] }
                return
            }
            // Then: spreads about the global mean.
            for i in values.indices {
                let d = partner.mean[i] - mean[i]
                values[i] += partner.m2[i] + Double(partner.count) * d * d
            }
        } else {
            // First sum: the count, then count-weighted means.
            values[0] += Double(partner.count)
            for i in 1..<values.count { values[i] += partner.mean[i - 1] * Double(partner.count) }
            globalMean = (1..<values.count).map { values[$0] / values[0] }
        }
    }
    func sum(_ values: UnsafeMutableBufferPointer<Float>) throws {}
    func sum(_ values: UnsafeMutableBufferPointer<Complex<Float>>) throws {}
    func maximum(_ value: Double) throws -> Double { value }
    func gather(_ values: [Int]) throws -> [[Int]] { [values] }
    func broadcast(_ text: String, root: Int) throws -> String { text }
    func makeExchange(_ transfers: [PeerTransfer]) throws -> Exchange { fatalError("no peers in this test") }
}
