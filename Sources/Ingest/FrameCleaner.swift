import Foundation
import Numerics
import Recon
import SwiftFFTW

/// What preprocessing does to each raw frame; every step can be switched off.
public struct PreprocessOptions: Codable, Equatable, Sendable {
    /// Subtract the per-pixel dark mean (when dark frames exist).
    public var subtractDark = true
    /// Per channel, fit a polynomial of this order to the overscan along the
    /// readout sequence and subtract it (0: off).
    public var overscanOrder = 2
    /// Remove narrow readout interference lines found in the background.
    public var removeSpikes = true
    /// Search every frame's readout spectrum for lines, even where the dark
    /// frames' lines explain its overscan (for interference that comes and
    /// goes between frames; slower: see `bench preprocess`).
    public var searchEveryFrame = false
    /// A line is a spectral bin this many times the band's median magnitude
    /// (the noise there is Rayleigh-distributed: 5 is 5.9 sigma).
    public var spikeThreshold = 5.0
    /// Lines are searched above this fraction of the readout's Nyquist frequency.
    public var spikeBand = 0.25
    /// At most this many lines per channel, strongest first.
    public var maxSpikesPerChannel = 8
    /// Pixels within this many noise deviations of zero (after dark and
    /// offset) are background for the interference fit.
    public var backgroundSigma = 3.0
    /// Photons below this are set to zero: 0.5 keeps every pixel nearer one
    /// photon than none.
    public var photonThreshold = 0.5
    /// Dark-frame outliers (deviation or level) beyond this many channel noise deviations are masked.
    public var badPixelThreshold = 5.0
    /// ADU per photon (nil: the file's).
    public var gain: Double? = nil
    /// Diffraction centre (y, x) in image pixels (nil: centre of mass of bright frames).
    public var centre: [Double]? = nil
    /// A centred disc of this radius in image pixels attenuates by `beamstopTransmission`
    /// (divided out; 0 masks it as shadowed).
    public var beamstopRadius: Double? = nil
    public var beamstopTransmission = 0.0
    /// Square crop around the centre, then FFT downsampling to `outputSize` (nil: no crop, no downsampling).
    public var cropSize: Int? = nil
    public var outputSize: Int? = nil
    /// Gaussian taper of the kept spectrum, sigma as a fraction of the output's Nyquist frequency (nil: sharp cut).
    public var downsampleSigma: Double? = nil

    public init() {}

    public func problems() -> [String] {
        var out: [String] = []
        if !(0...3).contains(overscanOrder) { out.append("overscan order must be 0 (off) to 3, got \(overscanOrder)") }
        if !(spikeThreshold > 1) { out.append("spike threshold must be above 1, got \(spikeThreshold)") }
        if !(spikeBand >= 0 && spikeBand < 1) { out.append("spike band must be in [0, 1), got \(spikeBand)") }
        if !(photonThreshold >= 0) { out.append("photon threshold must be at least 0, got \(photonThreshold)") }
        if let g = gain, !(g > 0) { out.append("gain must be positive ADU per photon, got \(g)") }
        if let c = centre, c.count != 2 { out.append("centre must be two numbers (y, x)") }
        if let r = beamstopRadius, !(r >= 0) { out.append("beamstop radius must be at least 0 pixels") }
        if !(beamstopTransmission >= 0 && beamstopTransmission <= 1) { out.append("beamstop transmission must be in [0, 1]") }
        if let c = cropSize, c < 2 { out.append("crop size must be at least 2 pixels, got \(c)") }
        if let o = outputSize, o < 2 { out.append("output size must be at least 2 pixels, got \(o)") }
        if let o = outputSize, let c = cropSize, o > c { out.append("output size \(o) is larger than the crop \(c)") }
        if let s = downsampleSigma, !(s > 0) { out.append("downsampling sigma must be positive") }
        return out
    }
}

/// One cleaned frame and what the scan images need from it.
public struct CleanFrame: Sendable {
    /// Photons, outputSize^2, zero frequency at the centre pixel.
    public var photons: [Float]
    /// Photons on the whole detector (the transmission signal).
    public var total: Double
    /// Centre of mass (y, x) on the whole detector, image pixels.
    public var centreOfMass: (y: Double, x: Double)
    /// Non-finite input values, read as 0.
    public var nonFinite: Int
}

/// Cleans raw fast-CCD frames one at a time with buffers and plans made
/// once, so the offline command and the stream share it.
public final class FrameCleaner {
    public let layout: ReadoutLayout
    public let options: PreprocessOptions
    public let gain: Double
    public let centre: (y: Double, x: Double)
    public let cropSize: Int
    public let outputSize: Int
    /// Mask of the image pixels (darks, file, beamstop), and of the output frames.
    public let imageMask: [UInt32]
    public let outputMask: [UInt32]

    private let noise: [Float]
    private var sequence: ComplexBuffer
    private let sequenceSpectrum: ComplexBuffer
    /// With enough overscan, lines are fitted there, and the readout
    /// spectrum only has to show where they are: a real transform of the
    /// background samples. Without, the exact fits need the selection's
    /// transform too: both packed as one complex transform.
    private let linesFromOverscan: Bool
    /// Per channel: whether any of its image pixels is unmasked (a channel
    /// masked whole, e.g. a noisy one, yields only zeros: its lines do not matter).
    private let liveChannels: [Bool]
    /// Per channel: the interference lines of the dark frames (radians per sample).
    public let darkLines: [[Double]]
    private let sequenceLines: FFTLines?
    private let sequencePlan: FFTPlan2D?
    /// The readout transform's length: the sequence zero-padded (padding is
    /// not background, so the fits stay exact) to a length FFTW is fast at.
    private let transformLength: Int
    // Downsampling as a pruned 2-D transform: real-to-complex rows of the
    // crop, only the kept columns of their spectra transformed down the
    // rows, then the kept block transformed back (3/8 of a full transform).
    private let realCrop: ComplexBuffer
    private let rowSpectra: ComplexBuffer
    private let keptColumns: ComplexBuffer
    private let outputBuffer: ComplexBuffer
    private let rowPlan: FFTLines?
    private let columnPlan: FFTLines?
    private let outputPlan: FFTPlan2D?
    /// The taper per kept frequency, in the output's FFT order (nil: sharp cut).
    private let taper: [Float]?
    // Scratch owned for the cleaner's life: raw pointers, so the hot loops
    // pay no exclusivity or uniqueness checks on class-held arrays.
    /// Per raw pixel: the dark mean (zero without darks or with their
    /// subtraction off), and the same at the overscan positions,
    /// `[(channel * rows + y) * overscan + m]`, read contiguously by the gather.
    private let dark: UnsafeMutableBufferPointer<Float>
    private let darkOverscan: UnsafeMutableBufferPointer<Float>
    /// The frame's overscan less the dark mean, in `darkOverscan`'s layout;
    /// after the offset fits, less the offsets too.
    private let overscanSamples: UnsafeMutableBufferPointer<Double>
    /// Per raw pixel: the noise deviation a background sample stays within
    /// (times the limit), 1 without darks (the overscan's noise scales it
    /// per frame), -1 for dead and hot pixels, which are never background.
    private let backgroundScale: UnsafeMutableBufferPointer<Float>
    /// Per image pixel: 1 / beamstop transmission, 0 where masked.
    private let photonFactor: UnsafeMutableBufferPointer<Float>
    /// Seconds spent per step over all frames, when `recordTimings` is on (for `bench preprocess`).
    public var recordTimings = false
    public private(set) var stepSeconds: [String: Double] = [:]
    /// The steps `stepSeconds` may name, in order.
    public static let stepNames = ["overscan gather", "overscan fits", "interference: darks' lines", "interference: darks' lines: fits", "interference: search",
                                   "interference: transform", "interference: fits", "interference: refine",
                                   "dark, offsets, lines, photons and centre of mass", "crop and downsample"]
    /// Frames whose readout spectrum was searched for lines (the darks' lines did not explain their overscan).
    public private(set) var searchedFrames = 0
    /// The overscan check: each channel's overscan columns' residuals down
    /// the rows, zero-padded, and their spectra; nil without enough overscan.
    private let overscanCheck: FFTLines?
    private let overscanSeries: ComplexBuffer
    private let overscanSpectra: ComplexBuffer
    /// A Hann window down the rows: a strong line's leakage falls fast.
    private let overscanWindow: [Float]
    /// A periodogram bin above this many times the median is a line.
    private let overscanAlarm: Double
    private let offsetWeights: [Double]

    /// `dark`: statistics of the dark frames (nil: none, offsets come from the
    /// overscan alone). `fileMask`: the input's CXI mask of image pixels, if any.
    /// `beamstopMap`: a measured transmission per image pixel (0 masks), on
    /// top of any disc in the options.
    public init(layout: ReadoutLayout, gain fileGain: Double?, dark: DarkStatistics?, fileMask: [UInt32]?,
                centre: (y: Double, x: Double), options: PreprocessOptions, beamstopMap: [Float]? = nil) throws {
        let problems = options.problems() + layout.problems()
        guard problems.isEmpty else { throw PreprocessError.input(problems.joined(separator: "; ")) }
        guard let g = options.gain ?? fileGain else {
            throw PreprocessError.input("no gain: the file has no ns_readout/gain; give --gain in ADU per photon")
        }
        let imagePixels = layout.rows * layout.columns
        if let m = fileMask, m.count != imagePixels {
            throw PreprocessError.shape("the file's mask has \(m.count) pixels, the detector image \(layout.rows)x\(layout.columns)")
        }
        if let d = dark, d.pixels != layout.rawPixels {
            throw PreprocessError.shape("dark statistics of \(d.pixels) pixels for raw frames of \(layout.rawPixels)")
        }
        self.layout = layout
        self.options = options
        self.centre = centre
        gain = g
        let crop = options.cropSize ?? min(layout.rows, layout.columns)
        guard crop <= min(layout.rows, layout.columns) || options.cropSize == nil else {
            throw PreprocessError.input("crop \(crop) is larger than the \(layout.rows)x\(layout.columns) detector")
        }
        cropSize = crop
        outputSize = options.outputSize ?? crop

        var mask = fileMask ?? [UInt32](repeating: 0, count: imagePixels)
        if let dark, dark.count > 1 {
            for (i, bits) in dark.mask(layout: layout, threshold: options.badPixelThreshold).enumerated() { mask[i] |= bits }
        }
        // Beamstop transmission per image pixel.
        var t = [Float](repeating: 1, count: imagePixels)
        if let map = beamstopMap {
            guard map.count == imagePixels else {
                throw PreprocessError.shape("the beamstop map has \(map.count) pixels, the detector image \(layout.rows)x\(layout.columns) = \(imagePixels)")
            }
            guard map.allSatisfy({ $0 >= 0 && $0 <= 1 }) else {
                throw PreprocessError.input("the beamstop map must hold transmissions in [0, 1]")
            }
            for i in 0..<imagePixels {
                t[i] = map[i]
                if map[i] == 0 { mask[i] |= PixelMask.shadowed }
            }
        }
        if let r = options.beamstopRadius {
            for y in 0..<layout.rows { for x in 0..<layout.columns where hypot(Double(y) - centre.y, Double(x) - centre.x) <= r {
                t[y * layout.columns + x] *= Float(options.beamstopTransmission)
                if options.beamstopTransmission == 0 { mask[y * layout.columns + x] |= PixelMask.shadowed }
            } }
        }
        imageMask = mask
        liveChannels = (0..<layout.channels).map { ch in
            (0..<layout.rows).contains { y in
                (0..<layout.columnsPerChannel).contains { mask[y * layout.columns + ch * layout.columnsPerChannel + $0] == 0 }
            }
        }
        let darkMean = options.subtractDark ? dark.map { $0.mean.map(Float.init) } ?? [] : []
        // Noise per raw pixel: from the darks, else the overscan's typical read noise is found per frame.
        noise = dark.map { d in d.standardDeviation.map { Float(max($0, 1e-3)) } } ?? []

        let L = FFTW.fastLength(atLeast: layout.sequenceLength)
        transformLength = L
        // Out of place: the padding, zeroed here, is never written again.
        // A few hundred overscan samples pin a line better than the bins do.
        linesFromOverscan = layout.overscan * layout.rows >= 256
        // Lines found once on the darks (all background): tried first in every
        // frame, so a copy through a frame's selection never stands in for one.
        darkLines = options.removeSpikes && linesFromOverscan
            ? (dark?.interferenceLines(threshold: options.spikeThreshold, band: options.spikeBand,
                                       maxPerChannel: options.maxSpikesPerChannel) ?? [])
            : []
        let remove = options.removeSpikes, channels = layout.channels
        sequence = ComplexBuffer(count: remove ? (linesFromOverscan ? (channels * L + 1) / 2 : channels * L) : 0)
        sequenceSpectrum = ComplexBuffer(count: remove ? (linesFromOverscan ? channels * (L / 2 + 1) : channels * L) : 0)
        sequenceLines = remove && linesFromOverscan
            ? try FFTLines(length: L, count: channels, kind: .realToComplex, input: .init(stride: 1, distance: L),
                           output: .init(stride: 1, distance: L / 2 + 1))
            : nil
        sequencePlan = remove && !linesFromOverscan
            ? try FFTPlan2D(height: 1, width: L, batch: channels, direction: .forward, inPlace: false)
            : nil
        // Hann-windowed, a line between bins loses at most 1.4 dB: no padding.
        let series = layout.rows, columnSeries = channels * layout.overscan
        let check = remove && linesFromOverscan
        overscanCheck = check
            ? try FFTLines(length: series, count: columnSeries, kind: .realToComplex, input: .init(stride: 1, distance: series),
                           output: .init(stride: 1, distance: series / 2 + 1))
            : nil
        overscanWindow = (0..<layout.rows).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(max(1, layout.rows - 1)))) }
        overscanSeries = ComplexBuffer(count: check ? (columnSeries * series + 1) / 2 : 0)
        overscanSpectra = ComplexBuffer(count: check ? columnSeries * (series / 2 + 1) : 0)
        overscanAlarm = OverscanLines.noiseLevel(columns: max(1, layout.overscan), bins: channels * (series / 2 + 1))
            / OverscanLines.noiseMedian(columns: max(1, layout.overscan))
        offsetWeights = Self.offsetWeights(layout: layout, order: options.overscanOrder)
        let resample = outputSize != crop
        let m = outputSize, spectrumWidth = crop / 2 + 1
        // The crop window, written row by row by the photon pass: zero outside the detector.
        realCrop = ComplexBuffer(count: (crop * crop + 1) / 2)
        rowSpectra = ComplexBuffer(count: resample ? crop * spectrumWidth : 0)
        keptColumns = ComplexBuffer(count: resample ? crop * m : 0)
        outputBuffer = ComplexBuffer(count: resample ? m * m : 0)
        rowPlan = resample
            ? try FFTLines(length: crop, count: crop, kind: .realToComplex, input: .init(stride: 1, distance: crop),
                           output: .init(stride: 1, distance: spectrumWidth))
            : nil
        columnPlan = resample
            ? try FFTLines(length: crop, count: m, kind: .complex(.forward), input: .init(stride: m, distance: 1),
                           output: .init(stride: m, distance: 1), inPlace: true)
            : nil
        outputPlan = resample ? try FFTPlan2D(height: m, width: m, direction: .inverse, inPlace: true) : nil
        taper = options.downsampleSigma.map { sigma in
            let half = m / 2
            return (0..<(m * m)).map { i in
                let (dy, dx) = (i / m, i % m)
                let ky = dy < m - half ? dy : dy - m, kx = dx < m - half ? dx : dx - m
                let r2 = (Double(ky * ky) + Double(kx * kx)) / Double(half * half)
                return Float(exp(-r2 / (2 * sigma * sigma)))
            }
        }
        self.dark = .allocate(capacity: layout.rawPixels)
        if darkMean.count == layout.rawPixels { _ = self.dark.initialize(from: darkMean) } else { self.dark.initialize(repeating: 0) }
        darkOverscan = .allocate(capacity: layout.channels * layout.rows * layout.overscan)
        overscanSamples = .allocate(capacity: layout.channels * layout.rows * layout.overscan)
        overscanSamples.initialize(repeating: 0)
        for ch in 0..<layout.channels {
            for y in 0..<layout.rows {
                for m in 0..<layout.overscan {
                    darkOverscan[(ch * layout.rows + y) * layout.overscan + m] =
                        self.dark[y * layout.rawColumns + ch * layout.blockWidth + layout.columnsPerChannel + m]
                }
            }
        }
        backgroundScale = .allocate(capacity: layout.rawPixels)
        backgroundScale.initialize(repeating: 1)
        photonFactor = .allocate(capacity: imagePixels)
        for i in 0..<imagePixels { photonFactor[i] = mask[i] != 0 ? 0 : 1 / max(t[i], 1e-12) }
        for y in 0..<layout.rows {
            for ch in 0..<layout.channels {
                for k in 0..<layout.columnsPerChannel {
                    let raw = y * layout.rawColumns + ch * layout.blockWidth + k
                    let bad = mask[y * layout.columns + ch * layout.columnsPerChannel + k] & (PixelMask.dead | PixelMask.hot) != 0
                    backgroundScale[raw] = bad ? -1 : (noise.isEmpty ? 1 : noise[raw])
                }
            }
        }

        // The output mask: the image mask cropped, and a downsampled pixel
        // invalid when half its footprint is.
        var out = [UInt32](repeating: 0, count: outputSize * outputSize)
        let (y0, x0) = (Int(centre.y.rounded()) - crop / 2, Int(centre.x.rounded()) - crop / 2)
        let scale = Double(crop) / Double(outputSize)
        for oy in 0..<outputSize {
            for ox in 0..<outputSize {
                var bad = 0, all = 0, bits: UInt32 = 0
                let ys = Int((Double(oy) * scale).rounded(.down))..<max(Int((Double(oy) * scale).rounded(.down)) + 1, Int((Double(oy + 1) * scale).rounded(.down)))
                let xs = Int((Double(ox) * scale).rounded(.down))..<max(Int((Double(ox) * scale).rounded(.down)) + 1, Int((Double(ox + 1) * scale).rounded(.down)))
                for cy in ys { for cx in xs {
                    let y = y0 + cy, x = x0 + cx
                    all += 1
                    guard y >= 0, y < layout.rows, x >= 0, x < layout.columns else { bad += 1; bits |= PixelMask.invalid; continue }
                    let m = mask[y * layout.columns + x]
                    if m != 0 { bad += 1; bits |= m }
                } }
                out[oy * outputSize + ox] = 2 * bad >= all ? (bits == 0 ? PixelMask.invalid : bits) : 0
            }
        }
        outputMask = out
    }

    deinit {
        dark.deallocate()
        darkOverscan.deallocate()
        overscanSamples.deallocate()
        backgroundScale.deallocate()
        photonFactor.deallocate()
    }

    /// Top-left of the crop window in image pixels (may lie outside the detector).
    public var cropOrigin: (y: Int, x: Int) {
        (Int(centre.y.rounded()) - cropSize / 2, Int(centre.x.rounded()) - cropSize / 2)
    }

    /// The downsampling's transforms alone, on the cleaner's plans and
    /// buffers: the FFT-only baseline of `bench preprocess`.
    public func runDownsamplingTransforms() throws {
        guard let rowPlan, let columnPlan, let outputPlan else { return }
        try rowPlan.execute(realCrop, rowSpectra)
        try columnPlan.execute(keptColumns, keptColumns)
        try outputPlan.execute(outputBuffer.baseAddress, outputBuffer.baseAddress, normalization: .none)
    }

    /// Detector pixel pitch after downsampling, for a given input pitch.
    public func outputPixelSize(_ input: Double) -> Double { input * Double(cropSize) / Double(outputSize) }

    // MARK: Steps

    public func clean(raw: [Float]) throws -> CleanFrame {
        let L = layout
        guard raw.count == L.rawPixels else {
            throw PreprocessError.shape("a raw frame has \(raw.count) values, the detector \(L.rows)x\(L.rawColumns) = \(L.rawPixels)")
        }
        return try raw.withUnsafeBufferPointer { try clean($0) }
    }

    private func clean(_ raw: UnsafeBufferPointer<Float>) throws -> CleanFrame {
        let overscanFinite = try timedValue("overscan gather") { gatherOverscan(raw) }
        let offsets = try timedValue("overscan fits") { fitOffsets() }
        // Lines the darks explain need no search of the frame's readout spectrum.
        var lines: [[InterferenceLine]]? = nil
        if options.removeSpikes && !options.searchEveryFrame {
            lines = try timedValue("interference: darks' lines") { try linesIfExplained() }
        }
        if options.removeSpikes && lines == nil {
            searchedFrames += 1
            try timed("interference: search") {
                selectBackground(raw, offsets)
                lines = try removeSpikes()
            }
        }
        let (total, com, finite) = try timedValue("dark, offsets, lines, photons and centre of mass") {
            extractPhotons(raw, subtracting: lines ?? [], offsets: offsets.coefficients)
        }
        let photons = try timedValue("crop and downsample") { try resample() }
        let nonFinite = overscanFinite && finite ? 0 : raw.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
        return CleanFrame(photons: photons, total: total, centreOfMass: com, nonFinite: nonFinite)
    }

    private func timedValue<T>(_ step: String, _ body: () throws -> T) throws -> T {
        var value: T?
        try timed(step) { value = try body() }
        return value!
    }

    @inline(__always)
    private func timed(_ step: String, _ body: () throws -> Void) throws {
        guard recordTimings else { return try body() }
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        stepSeconds[step, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    }

    /// The offset fits and what the overscan says of the frame.
    struct Offsets {
        /// Per channel: the polynomial's coefficients in the normalized readout sequence.
        var coefficients: [[Float]]
        /// A background sample stays within this times its pixel's `backgroundScale`.
        var bound: Float
    }

    /// Each channel's offset: a least-squares polynomial in the normalized
    /// readout sequence through its overscan. The overscan positions are the
    /// same on every frame and channel, so each coefficient is one weighted
    /// sum of the samples (`offsetWeights`, made once).
    private func fitOffsets() -> Offsets {
        let L = layout, cw = L.columnsPerChannel, bw = L.blockWidth, o = L.overscan, count = L.rows * o
        let terms = offsetWeights.count / max(1, count)
        let step = Float(1 / Double(L.sequenceLength))
        var coefficients = [[Float]](repeating: [0, 0, 0, 0], count: L.channels)
        var residualSquares = 0.0
        offsetWeights.withUnsafeBufferPointer { weights in
            for ch in 0..<L.channels {
                let s = overscanSamples.baseAddress! + ch * count
                var c: [Float] = [0, 0, 0, 0]
                for i in 0..<terms {
                    // Four partial sums: one chain of dependent adds would wait on each.
                    var sums = SIMD4<Double>.zero
                    let w = weights.baseAddress! + i * count
                    var k = 0
                    while k + 4 <= count {
                        sums += UnsafeRawPointer(w + k).loadUnaligned(as: SIMD4<Double>.self)
                            * UnsafeRawPointer(s + k).loadUnaligned(as: SIMD4<Double>.self)
                        k += 4
                    }
                    var sum = sums.sum()
                    while k < count { sum += w[k] * s[k]; k += 1 }
                    c[i] = Float(sum)
                }
                coefficients[ch] = c
                // The offset subtracted in Float, at the positions the data pass computes.
                let (c0, c1, c2, c3) = (c[0], c[1], c[2], c[3])
                for y in 0..<L.rows {
                    let t0 = Float(y * bw) * step
                    for m in 0..<o {
                        let t = t0 + Float(cw + m) * step
                        s[y * o + m] = Double(Float(s[y * o + m]) - (((c3 * t + c2) * t + c1) * t + c0))
                    }
                }
                // Four partial sums, as above.
                var squares = SIMD4<Double>.zero
                var k = 0
                while k + 4 <= count {
                    let r = UnsafeRawPointer(s + k).loadUnaligned(as: SIMD4<Double>.self)
                    squares += r * r
                    k += 4
                }
                residualSquares += squares.sum()
                while k < count { residualSquares += s[k] * s[k]; k += 1 }
            }
        }
        // Without darks the noise per pixel is unknown: the overscan gives a typical one.
        let typicalNoise = count > 0 ? Float(max((residualSquares / Double(L.channels * count)).squareRoot(), 1e-3)) : 3
        let bound = Float(options.backgroundSigma) * (noise.isEmpty ? typicalNoise : 1)
        return Offsets(coefficients: coefficients, bound: bound)
    }

    /// Channel ch's overscan less the dark and its offset, `[y * overscan + m]` (after `fitOffsets`).
    private func overscan(of ch: Int) -> UnsafeBufferPointer<Double> {
        let count = layout.rows * layout.overscan
        return UnsafeBufferPointer(rebasing: overscanSamples[(ch * count)..<((ch + 1) * count)])
    }

    /// Per polynomial term i and overscan sample k (`[i * count + k]`), its
    /// weight in the least-squares coefficient: row i of (A^T A)^-1 A^T, A
    /// the powers of each sample's position. Empty when the offset is not fitted.
    static func offsetWeights(layout L: ReadoutLayout, order: Int) -> [Double] {
        let o = L.overscan, count = L.rows * o, terms = order + 1
        guard order > 0, o > 0 else { return [] }
        let step = Float(1 / Double(L.sequenceLength))
        var powers = [Double](repeating: 0, count: terms * count)
        for y in 0..<L.rows {
            let t0 = Float(y * L.blockWidth) * step
            for m in 0..<o {
                let t = Double(t0 + Float(L.columnsPerChannel + m) * step)
                var p = 1.0
                for i in 0..<terms { powers[i * count + y * o + m] = p; p *= t }
            }
        }
        var gram = [Double](repeating: 0, count: terms * terms)
        for i in 0..<terms { for j in 0..<terms {
            gram[i * terms + j] = (0..<count).reduce(0) { $0 + powers[i * count + $1] * powers[j * count + $1] }
        } }
        // Columns of the inverse, then each weight row.
        var inverse = [Double](repeating: 0, count: terms * terms)
        for j in 0..<terms {
            var e = [Double](repeating: 0, count: terms)
            e[j] = 1
            guard let column = solve(gram, e, terms) else { return [] }
            for i in 0..<terms { inverse[i * terms + j] = column[i] }
        }
        var weights = [Double](repeating: 0, count: terms * count)
        for i in 0..<terms { for k in 0..<count {
            weights[i * count + k] = (0..<terms).reduce(0) { $0 + inverse[i * terms + $1] * powers[$1 * count + k] }
        } }
        return weights
    }

    /// Each channel's overscan less the dark mean, for the offset fits
    /// (`[(channel * rows + y) * overscan + m]`, the layout of
    /// `darkOverscan`); non-finite samples taken as 0 (`finite` false if
    /// any). A few strided reads: the image pixels are read once, by the
    /// photon pass, which subtracts the dark there.
    private func gatherOverscan(_ raw: UnsafeBufferPointer<Float>) -> Bool {
        let L = layout, cw = L.columnsPerChannel, bw = L.blockWidth, o = L.overscan
        var bad: UInt32 = 0
        var badLanes = SIMDMask<SIMD4<Int32>>(repeating: false)
        let largest = SIMD4<Float>(repeating: .greatestFiniteMagnitude)
        let r = raw.baseAddress!, d = darkOverscan.baseAddress!, g = overscanSamples.baseAddress!
        // Row by row, so the frame is read in order; four columns to a load,
        // so one load steps by a block's width and the prefetcher follows it.
        for y in 0..<L.rows {
            for ch in 0..<L.channels {
                let source = r + y * L.rawColumns + ch * bw + cw, k = (ch * L.rows + y) * o
                var m = 0
                while m + 4 <= o {
                    let v = UnsafeRawPointer(source + m).loadUnaligned(as: SIMD4<Float>.self)
                    let finite = (v .<= largest) .& (v .>= -largest)
                    badLanes = badLanes .| .!finite
                    let dv = v.replacing(with: 0, where: .!finite) - UnsafeRawPointer(d + k + m).loadUnaligned(as: SIMD4<Float>.self)
                    UnsafeMutableRawPointer(g + k + m).storeBytes(of: SIMD4<Double>(dv), as: SIMD4<Double>.self)
                    m += 4
                }
                while m < o {
                    let v = source[m]
                    bad |= v.isFinite ? 0 : 1
                    g[k + m] = Double((v.isFinite ? v : 0) - d[k + m])
                    m += 1
                }
            }
        }
        return bad == 0 && !any(badLanes)
    }

    /// One channel's block of row y less the dark mean, non-finite values taken as 0.
    @inline(__always)
    private func darkSubtracted(_ raw: UnsafePointer<Float>, row y: Int, channel ch: Int, into out: UnsafeMutablePointer<Float>) {
        let first = y * layout.rawColumns + ch * layout.blockWidth
        let x = raw + first, d = dark.baseAddress! + first
        for k in 0..<layout.blockWidth { out[k] = (x[k].isFinite ? x[k] : 0) - d[k] }
    }

    /// For the line search: each channel's background samples (less its
    /// offset) packed in readout order, zero elsewhere (with their indicator
    /// where the lines are fitted to the bins).
    private func selectBackground(_ raw: UnsafeBufferPointer<Float>, _ offsets: Offsets) {
        let L = layout, cw = L.columnsPerChannel, bw = L.blockWidth
        let n = transformLength, bound = offsets.bound
        let packed = UnsafeMutableRawPointer(sequence.baseAddress).assumingMemoryBound(to: Float.self)
        let scale = backgroundScale.baseAddress!
        let level = UnsafeMutablePointer<Float>.allocate(capacity: bw), x = UnsafeMutablePointer<Float>.allocate(capacity: bw)
        defer { level.deallocate(); x.deallocate() }
        for y in 0..<L.rows {
            for ch in 0..<L.channels {
                let first = y * L.rawColumns + ch * bw
                offsetRow(offsets.coefficients[ch], row: y, count: bw, into: level)
                darkSubtracted(raw.baseAddress!, row: y, channel: ch, into: x)
                let limit = scale + first
                if linesFromOverscan {
                    // Overscan samples carry no signal: always background.
                    let s = packed + ch * n + y * bw
                    for k in 0..<cw {
                        let v = x[k] - level[k]
                        s[k] = abs(v) < bound * limit[k] ? v : 0
                    }
                    for k in cw..<bw { s[k] = x[k] - level[k] }
                    continue
                }
                // Real part: the background samples; imaginary: which samples they are.
                let s = packed + 2 * (ch * n + y * bw)
                for k in 0..<cw {
                    let v = x[k] - level[k]
                    let quiet = abs(v) < bound * limit[k]
                    s[2 * k] = quiet ? v : 0
                    s[2 * k + 1] = quiet ? 1 : 0
                }
                for k in cw..<bw {
                    s[2 * k] = x[k] - level[k]
                    s[2 * k + 1] = 1
                }
            }
        }
    }

    /// A channel's offset over the first `count` columns of row y's block:
    /// the cubic in the readout sequence at the first and last column, linear
    /// between. Over one block (a 1/rows part of the sequence) the cubic's
    /// curvature moves it by under 1e-6 of the drift, so the line is exact
    /// for all purposes and saves the cubic per pixel.
    @inline(__always)
    private func offsetRow(_ c: [Float], row y: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
        let step = Float(1 / Double(layout.sequenceLength))
        let (c0, c1, c2, c3) = (c[0], c[1], c[2], c[3])
        func offset(_ t: Float) -> Float { ((c3 * t + c2) * t + c1) * t + c0 }
        let t0 = Float(y * layout.blockWidth) * step
        let first = offset(t0), slope = count > 1 ? (offset(t0 + Float(count - 1) * step) - first) / Float(count - 1) : 0
        // Column numbers as Float lanes: an Int-to-Float conversion per element does not vectorize.
        var column = SIMD8<Float>(0, 1, 2, 3, 4, 5, 6, 7)
        var k = 0
        while k + 8 <= count {
            UnsafeMutableRawPointer(out + k).storeBytes(of: first + slope * column, as: SIMD8<Float>.self)
            column += 8
            k += 8
        }
        while k < count {
            out[k] = first + slope * Float(k)
            k += 1
        }
    }

    /// The darks' lines fitted on each channel's overscan, when they explain
    /// it: no bin of the residual's periodogram (each overscan column down
    /// the rows, Hann-windowed so a strong line's leakage falls fast and one
    /// between bins loses little) stands above what noise reaches once in a
    /// thousand frames.
    /// Nil when one does: the frame has a line the darks did not show, and
    /// the readout spectrum must be searched.
    private func linesIfExplained() throws -> [[InterferenceLine]]? {
        guard let check = overscanCheck else { return nil }
        let L = layout, o = L.overscan, cw = L.columnsPerChannel, r = check.length, count = L.rows * o
        let series = UnsafeMutableRawPointer(overscanSeries.baseAddress).assumingMemoryBound(to: Float.self)
        var found = [[InterferenceLine]](repeating: [], count: L.channels)
        try timed("interference: darks' lines: fits") {
            for ch in 0..<L.channels where liveChannels[ch] {
                let known = ch < darkLines.count ? darkLines[ch] : []
                guard !known.isEmpty else { continue }
                let fit = OverscanLines(rows: L.rows, blockWidth: L.blockWidth, first: cw, samples: overscan(of: ch))
                found[ch] = fit.refine(known.map { (omega: $0, within: 0.25) },
                                       significance: options.spikeThreshold * options.spikeThreshold,
                                       maxLines: options.maxSpikesPerChannel)
            }
        }
        // The residual, windowed, each overscan column down the rows: the
        // samples, less each line (per row its cosine and sine weights A, B,
        // turned row to row four rows to a vector, then over each column),
        // times the window.
        let rows = L.rows
        let weightA = UnsafeMutablePointer<Float>.allocate(capacity: rows), weightB = UnsafeMutablePointer<Float>.allocate(capacity: rows)
        defer { weightA.deallocate(); weightB.deallocate() }
        overscanWindow.withUnsafeBufferPointer { window in
            for ch in 0..<L.channels where liveChannels[ch] {
                let v = overscanSamples.baseAddress! + ch * count
                for m in 0..<o {
                    let column = series + (ch * o + m) * r
                    for y in 0..<rows { column[y] = Float(v[y * o + m]) }
                }
                for line in found[ch] {
                    let theta = line.omega * Double(L.blockWidth)
                    var c = SIMD4<Double>(1, cos(theta), cos(2 * theta), cos(3 * theta))
                    var s = SIMD4<Double>(0, sin(theta), sin(2 * theta), sin(3 * theta))
                    let stepC = cos(4 * theta), stepS = sin(4 * theta)
                    var y = 0
                    while y + 4 <= rows {
                        UnsafeMutableRawPointer(weightA + y).storeBytes(of: SIMD4<Float>(line.a * c + line.b * s), as: SIMD4<Float>.self)
                        UnsafeMutableRawPointer(weightB + y).storeBytes(of: SIMD4<Float>(line.b * c - line.a * s), as: SIMD4<Float>.self)
                        (c, s) = (c * stepC - s * stepS, s * stepC + c * stepS)
                        y += 4
                    }
                    while y < rows {
                        let (cy, sy) = (cos(theta * Double(y)), sin(theta * Double(y)))
                        weightA[y] = Float(line.a * cy + line.b * sy)
                        weightB[y] = Float(line.b * cy - line.a * sy)
                        y += 1
                    }
                    for m in 0..<o {
                        let cm = Float(cos(line.omega * Double(cw + m))), sm = Float(sin(line.omega * Double(cw + m)))
                        let column = series + (ch * o + m) * r
                        for y in 0..<rows { column[y] -= weightA[y] * cm + weightB[y] * sm }
                    }
                }
                for m in 0..<o {
                    let column = series + (ch * o + m) * r
                    for y in 0..<rows { column[y] *= window[y] }
                }
            }
        }
        try check.execute(overscanSeries, overscanSpectra)
        let bins = r / 2 + 1, nearRowRate = 4 * (r / L.rows) + 1
        let s = UnsafeMutableRawPointer(overscanSpectra.baseAddress).assumingMemoryBound(to: Float.self)
        let power = UnsafeMutableBufferPointer<Float>.allocate(capacity: bins)
        let order = UnsafeMutableBufferPointer<Float>.allocate(capacity: bins)
        defer { power.deallocate(); order.deallocate() }
        for ch in 0..<L.channels where liveChannels[ch] {
            let p = power.baseAddress!
            p.update(repeating: 0, count: bins)
            for m in 0..<o {
                let z = s + 2 * (ch * o + m) * bins
                for k in 0..<bins { p[k] += z[2 * k] * z[2 * k] + z[2 * k + 1] * z[2 * k + 1] }
            }
            // Lines within 2 readout bins of a row-rate harmonic (where the
            // darks and the search look for none, as the fixed pattern and
            // the background selection peak there) alias to within 2 bins of
            // 0 down the rows; the window's main lobe is 2 bins wide each side.
            var largest: Float = 0
            for k in nearRowRate..<bins { largest = max(largest, p[k]) }
            _ = order.update(fromContentsOf: power)
            let median = select(bins / 2, in: order)
            if largest > Float(overscanAlarm) * median { return nil }
        }
        return found
    }

    /// Per channel: the background readout sequence (signal and bad pixels
    /// zeroed) is Fourier transformed; bins standing `spikeThreshold` times
    /// above the band's median are interference lines. With enough overscan,
    /// each line's frequency (a real line lies between bins) and all their
    /// amplitudes are fitted there; without, each bin is fitted by least
    /// squares to the background samples (CLEAN). The lines are subtracted
    /// from the whole channel.
    private func removeSpikes() throws -> [[InterferenceLine]] {
        var found = [[InterferenceLine]](repeating: [], count: layout.channels)
        let L = layout, n = transformLength, bw = L.blockWidth
        try timed("interference: transform") {
            if let lines = sequenceLines { try lines.execute(sequence, sequenceSpectrum) }
            if let plan = sequencePlan { try plan.execute(sequence.baseAddress, sequenceSpectrum.baseAddress, normalization: .none) }
        }
        let lowest = max(1, Int(options.spikeBand * Double(n / 2)))
        guard lowest < n / 2 else { return found }
        let s = UnsafeMutableRawPointer(sequenceSpectrum.baseAddress).assumingMemoryBound(to: Float.self)
        // Squared magnitudes (their order is the magnitudes'), Float, over pointers.
        let squares = UnsafeMutablePointer<Float>.allocate(capacity: n / 2)
        defer { squares.deallocate() }
        squares.initialize(repeating: 0, count: n / 2)
        let rowPeriod = Double(n) / Double(bw)
        for ch in 0..<L.channels where liveChannels[ch] {
            if linesFromOverscan {
                let z = s + 2 * ch * (n / 2 + 1)
                for k in lowest..<(n / 2) { squares[k] = z[2 * k] * z[2 * k] + z[2 * k + 1] * z[2 * k + 1] }
            } else {
                // V_k = (Z_k + conj Z_-k) / 2, within the band.
                let z = s + 2 * ch * n
                for k in lowest..<(n / 2) {
                    let re = (z[2 * k] + z[2 * (n - k)]) * 0.5, im = (z[2 * k + 1] - z[2 * (n - k) + 1]) * 0.5
                    squares[k] = re * re + im * im
                }
            }
            // The noise level: the median magnitude of the band (a strided
            // sample of it on long readouts), which a few lines do not move.
            let stride = max(1, (n / 2 - lowest) / 2048)
            var sample = Swift.stride(from: lowest, to: n / 2, by: stride).map { squares[$0] }
            let middle = sample.count / 2
            let median = sample.withUnsafeMutableBufferPointer { select(middle, in: $0) }
            let floor = Double(options.spikeThreshold) * Double(median).squareRoot()
            // Local maxima away from the row-rate harmonics (those are the selection itself).
            func isPeak(_ k: Int, above level: Float) -> Bool {
                squares[k] > level && squares[k] >= squares[k - 1] && (k + 1 >= n / 2 || squares[k] >= squares[k + 1])
                    && abs(Double(k) - (Double(k) / rowPeriod).rounded() * rowPeriod) > 2
            }
            var lines: [InterferenceLine] = []
            try timed("interference: fits") {
                if linesFromOverscan {
                    let level = Float(floor * floor)
                    var peaks: [(k: Int, power: Float)] = []
                    for k in lowest..<(n / 2) where isPeak(k, above: level) { peaks.append((k, squares[k])) }
                    lines = try fromOverscan(channel: ch, samples: overscan(of: ch), peaks: peaks, transformLength: n)
                } else {
                    lines = clean(Spectra(s + 2 * ch * n, n), floor: floor, lowest: lowest) { isPeak($0, above: $1) }
                }
            }
            found[ch] = lines
        }
        return found
    }

    /// CLEAN over one channel's spectra: fit the strongest candidate bin as
    /// one line by least squares over the background samples, take the
    /// fitted line's share out of the other candidates (through B, the
    /// selection's own transform), repeat. The copies a line casts through
    /// the row-periodic selection vanish with it instead of being fitted.
    private func clean(_ spectrum: Spectra, floor: Double, lowest: Int, isPeak: (Int, Float) -> Bool) -> [InterferenceLine] {
        let n = spectrum.n, level = Float(0.25 * floor * floor)
        var candidates: [Int] = [], values: [Complex<Double>] = []
        for k in lowest..<(n / 2) where isPeak(k, level) {
            candidates.append(k)
            values.append(spectrum.samples(k))
        }
        var lines: [InterferenceLine] = []
        for _ in 0..<options.maxSpikesPerChannel {
            var best = -1, bestMagnitude = floor
            for (i, value) in values.enumerated() where value.length > bestMagnitude {
                best = i
                bestMagnitude = value.length
            }
            guard best >= 0 else { break }
            let k = candidates[best]
            let b0 = spectrum.indicator(0).real, b2 = spectrum.indicator(2 * k)
            let cc = (b0 + b2.real) / 2, ss = (b0 - b2.real) / 2, cs = -b2.imaginary / 2
            let vc = values[best].real, vs = -values[best].imaginary
            let det = cc * ss - cs * cs
            guard det > 1e-9 * max(cc * ss, 1) else { break }
            let a = (vc * ss - vs * cs) / det, b = (vs * cc - vc * cs) / det
            lines.append(InterferenceLine(omega: 2 * Double.pi * Double(k) / Double(n), a: a, b: b))
            for i in values.indices {
                let q = candidates[i]
                let minus = spectrum.indicator(q - k), plus = spectrum.indicator(q + k)
                // a cos + b sin on the background, transformed at q.
                let cosPart = (minus + plus) * Complex(0.5, 0)
                let sinPart = (minus - plus) * Complex(0, -0.5)
                values[i] -= cosPart * Complex(a, 0) + sinPart * Complex(b, 0)
            }
        }
        return lines
    }

    /// The channel's lines from its overscan, near the spectrum's peaks:
    /// strongest first, a peak within 3 bins of a stronger one taken as the
    /// same line (a line between bins lights both).
    private func fromOverscan(channel ch: Int, samples: UnsafeBufferPointer<Double>, peaks: [(k: Int, power: Float)],
                              transformLength n: Int) throws -> [InterferenceLine] {
        let known = ch < darkLines.count ? darkLines[ch] : []
        guard !peaks.isEmpty || !known.isEmpty else { return [] }
        let L = layout, cw = L.columnsPerChannel
        let binWidth = 2 * Double.pi / Double(n)
        // The darks' lines first (each to within a quarter bin), then the
        // frame's own peaks away from them (each to within a bin).
        var guesses = known.map { (omega: $0, within: 0.25) }
        var peakBins: [Int] = []
        for peak in peaks.sorted(by: { $0.power > $1.power })
        where !peakBins.contains(where: { abs($0 - peak.k) <= 3 }) && !known.contains(where: { abs($0 / binWidth - Double(peak.k)) <= 3 }) {
            peakBins.append(peak.k)
            // Beyond the lines, peaks are their side lobes and copies: each costs a look.
            if peakBins.count == 3 * options.maxSpikesPerChannel { break }
        }
        guesses += peakBins.map { (omega: Double($0) * binWidth, within: 1.0) }
        let fit = OverscanLines(rows: L.rows, blockWidth: L.blockWidth, first: cw, samples: samples)
        return try timedValue("interference: refine") {
            fit.refine(guesses, significance: options.spikeThreshold * options.spikeThreshold, maxLines: options.maxSpikesPerChannel)
        }
    }

    /// Each channel's interference lines evaluated over the data columns a
    /// row at a time, for the photon pass to subtract. With s = y w + j (w
    /// the block width), a line a cos(omega s) + b sin(omega s) is
    /// A_y cos(omega j) + B_y sin(omega j): two coefficients per row (a
    /// rotation of the last row's) and two tables over j, so the inner loop
    /// is plain Float arithmetic.
    final class RowLines {
        private let columns: Int
        /// Per channel, the index of its first line in the flat arrays below, and one past its last.
        private let start: [Int]
        /// Per line: cos and sin of omega j over the columns j.
        private let tables: UnsafeMutablePointer<Float>
        /// Per line: a, b, and cos, sin of omega w (w the block width).
        private let constants: UnsafeMutablePointer<Double>
        /// Per line: cos and sin of omega w y for the current row.
        private let phase: UnsafeMutablePointer<Double>

        init(_ lines: [[InterferenceLine]], columns: Int, blockWidth: Int) {
            self.columns = columns
            var start = [0]
            for channel in lines { start.append(start.last! + channel.count) }
            self.start = start
            let all = lines.flatMap { $0 }
            tables = .allocate(capacity: max(1, 2 * columns * all.count))
            constants = .allocate(capacity: max(1, 4 * all.count))
            phase = .allocate(capacity: max(1, 2 * all.count))
            for (l, line) in all.enumerated() {
                for j in 0..<columns {
                    tables[2 * l * columns + j] = Float(cos(line.omega * Double(j)))
                    tables[(2 * l + 1) * columns + j] = Float(sin(line.omega * Double(j)))
                }
                constants[4 * l] = line.a
                constants[4 * l + 1] = line.b
                constants[4 * l + 2] = cos(line.omega * Double(blockWidth))
                constants[4 * l + 3] = sin(line.omega * Double(blockWidth))
                phase[2 * l] = 1
                phase[2 * l + 1] = 0
            }
        }

        deinit {
            tables.deallocate()
            constants.deallocate()
            phase.deallocate()
        }

        /// Adds the channel's lines over its data columns of the next row
        /// (rows in order, once per channel).
        @inline(__always)
        func add(channel ch: Int, into out: UnsafeMutablePointer<Float>) {
            let n = columns
            for l in start[ch]..<start[ch + 1] {
                let a = constants[4 * l], b = constants[4 * l + 1], stepC = constants[4 * l + 2], stepS = constants[4 * l + 3]
                let c = phase[2 * l], s = phase[2 * l + 1]
                let A = Float(a * c + b * s), B = Float(b * c - a * s)
                let cosines = tables + 2 * l * n, sines = cosines + n
                for j in 0..<n { out[j] += A * cosines[j] + B * sines[j] }
                phase[2 * l] = c * stepC - s * stepS
                phase[2 * l + 1] = s * stepC + c * stepS
            }
        }
    }

    /// The transforms of a channel's background samples (V) and of its
    /// background indicator (B), packed as the real and imaginary parts of
    /// one complex transform and separated by Hermitian symmetry.
    struct Spectra {
        let z: UnsafeMutablePointer<Float>
        let n: Int
        init(_ z: UnsafeMutablePointer<Float>, _ n: Int) { self.z = z; self.n = n }

        /// Indices here lie within -n..<2n (sums and differences of bins): wrap without division.
        @inline(__always)
        private func at(_ k: Int) -> (Double, Double, Double, Double) {
            let a = k < 0 ? k + n : (k >= n ? k - n : k), b = a == 0 ? 0 : n - a
            return (Double(z[2 * a]), Double(z[2 * a + 1]), Double(z[2 * b]), Double(z[2 * b + 1]))
        }
        /// V_k = (Z_k + conj Z_-k) / 2.
        func samples(_ k: Int) -> Complex<Double> {
            let (ar, ai, br, bi) = at(k)
            return Complex((ar + br) / 2, (ai - bi) / 2)
        }
        /// B_k = (Z_k - conj Z_-k) / 2i.
        func indicator(_ k: Int) -> Complex<Double> {
            let (ar, ai, br, bi) = at(k)
            return Complex((ai + bi) / 2, -(ar - br) / 2)
        }
    }

    /// Image pixels in photons (the dark, offsets and interference lines
    /// subtracted; gain; masked pixels and sub-threshold values to 0; the
    /// beamstop divided out), the image's total and centre of mass summed
    /// while a row is in cache, and the row's part in the crop window placed
    /// in `realCrop` (made there in place when the crop holds whole rows).
    /// `finite` is false when a raw image pixel was not (taken as 0).
    private func extractPhotons(_ raw: UnsafeBufferPointer<Float>, subtracting found: [[InterferenceLine]],
                                offsets: [[Float]]) -> (Double, (y: Double, x: Double), finite: Bool) {
        let L = layout
        let inverseGain = Float(1 / gain), threshold = Float(options.photonThreshold)
        let cw = L.columnsPerChannel, columns = L.columns, bw = L.blockWidth
        let r = raw.baseAddress!, d = dark.baseAddress!, factor = photonFactor.baseAddress!
        let lines = RowLines(found.isEmpty ? [[InterferenceLine]](repeating: [], count: L.channels) : found,
                             columns: cw, blockWidth: bw)
        let level = UnsafeMutablePointer<Float>.allocate(capacity: cw), row = UnsafeMutablePointer<Float>.allocate(capacity: columns)
        defer { level.deallocate(); row.deallocate() }
        // The crop window's rows and columns on the detector.
        let c = cropSize, (y0, x0) = cropOrigin
        let ys = max(0, -y0)..<min(c, L.rows - y0), xs = max(0, -x0)..<min(c, L.columns - x0)
        let crop = UnsafeMutableRawPointer(realCrop.baseAddress).assumingMemoryBound(to: Float.self)
        let wholeRows = x0 <= 0 && columns - x0 <= c
        let largest = SIMD8<Float>(repeating: .greatestFiniteMagnitude)
        var badLanes = SIMDMask<SIMD8<Int32>>(repeating: false)
        var bad = false
        var total = 0.0, sy = 0.0, sx = 0.0
        for y in 0..<L.rows {
            let cy = y - y0
            let inCrop = ys.contains(cy) && !xs.isEmpty
            let out = wholeRows && inCrop ? crop + cy * c - x0 : row
            for ch in 0..<L.channels {
                let first = y * L.rawColumns + ch * bw
                let x = r + first, dk = d + first, o = out + ch * cw, f = factor + y * columns + ch * cw
                offsetRow(offsets[ch], row: y, count: cw, into: level)
                lines.add(channel: ch, into: level)
                // Explicit lanes: the selects do not vectorize by themselves.
                var k = 0
                while k + 8 <= cw {
                    let v = load(x + k)
                    // False for NaN too.
                    let finite = (v .<= largest) .& (v .>= -largest)
                    badLanes = badLanes .| .!finite
                    let photons = (v.replacing(with: 0, where: .!finite) - load(dk + k) - load(level + k)) * inverseGain
                    UnsafeMutableRawPointer(o + k).storeBytes(
                        of: (photons * load(f + k)).replacing(with: 0, where: photons .< threshold), as: SIMD8<Float>.self)
                    k += 8
                }
                while k < cw {
                    let v = x[k]
                    bad = bad || !v.isFinite
                    let photons = ((v.isFinite ? v : 0) - dk[k] - level[k]) * inverseGain
                    o[k] = photons < threshold ? 0 : photons * f[k]
                    k += 1
                }
            }
            // Float lanes over a row (exact enough for a centre), Double across rows.
            var sum = SIMD8<Float>.zero, moment = SIMD8<Float>.zero
            var position = SIMD8<Float>(0, 1, 2, 3, 4, 5, 6, 7)
            var k = 0
            while k + 8 <= columns {
                let v = load(out + k)
                sum += v
                moment += v * position
                position += 8
                k += 8
            }
            var rowSum = Double(sum.sum()), rowMoment = Double(moment.sum())
            while k < columns {
                rowSum += Double(out[k])
                rowMoment += Double(out[k]) * Double(k)
                k += 1
            }
            total += rowSum
            sy += rowSum * Double(y)
            sx += rowMoment
            if inCrop && !wholeRows {
                (crop + cy * c + xs.lowerBound).update(from: row + x0 + xs.lowerBound, count: xs.count)
            }
        }
        let finite = !bad && !any(badLanes)
        guard total > 0 else { return (0, centre, finite) }
        return (total, (y: sy / total, x: sx / total), finite)
    }

    @inline(__always)
    private func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    /// The crop (placed by the photon pass; zero outside the detector, as
    /// made), then the kept low frequencies of its
    /// spectrum transformed back on the output grid, scaled so photons are
    /// conserved (each output pixel sums its footprint); ringing below zero is clipped.
    private func resample() throws -> [Float] {
        let c = cropSize, m = outputSize
        let r = UnsafeMutableRawPointer(realCrop.baseAddress).assumingMemoryBound(to: Float.self)
        guard let rowPlan, let columnPlan, let outputPlan else { return Array(UnsafeBufferPointer(start: r, count: c * c)) }
        try rowPlan.execute(realCrop, rowSpectra)
        // The kept horizontal frequencies, in the output's FFT order; the
        // negative ones are the conjugates of the positive (a real input).
        let w = c / 2 + 1, half = m / 2
        let spectra = UnsafeMutableRawPointer(rowSpectra.baseAddress).assumingMemoryBound(to: Float.self)
        let kept = UnsafeMutableRawPointer(keptColumns.baseAddress).assumingMemoryBound(to: Float.self)
        for y in 0..<c {
            let source = spectra + 2 * y * w, target = kept + 2 * y * m
            for dx in 0..<(m - half) {
                target[2 * dx] = source[2 * dx]
                target[2 * dx + 1] = source[2 * dx + 1]
            }
            for dx in (m - half)..<m {
                let k = m - dx
                target[2 * dx] = source[2 * k]
                target[2 * dx + 1] = -source[2 * k + 1]
            }
        }
        try columnPlan.execute(keptColumns, keptColumns)
        // The kept vertical frequencies: rows -half..<m-half of the column spectra.
        let o = UnsafeMutableRawPointer(outputBuffer.baseAddress).assumingMemoryBound(to: Float.self)
        for dy in 0..<m {
            let ky = dy < m - half ? dy : dy - m
            let source = kept + 2 * ((ky + c) % c) * m, target = o + 2 * dy * m
            if let taper {
                taper.withUnsafeBufferPointer { all in
                    let t = all.baseAddress! + dy * m
                    for i in 0..<m {
                        target[2 * i] = source[2 * i] * t[i]
                        target[2 * i + 1] = source[2 * i + 1] * t[i]
                    }
                }
            } else {
                target.update(from: source, count: 2 * m)
            }
        }
        try outputPlan.execute(outputBuffer.baseAddress, outputBuffer.baseAddress, normalization: .none)
        let scale = 1 / Float(m * m)
        return outputMask.withUnsafeBufferPointer { mask in
            [Float](unsafeUninitializedCapacity: m * m) { out, n in
                for i in 0..<(m * m) { out[i] = mask[i] != 0 ? 0 : max(0, o[2 * i] * scale) }
                n = m * m
            }
        }
    }
}
