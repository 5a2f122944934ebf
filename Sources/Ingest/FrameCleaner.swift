import Foundation
import Numerics
import Recon
import SwiftFFTW

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

    let noise: [Float]
    var sequence: ComplexBuffer
    let sequenceSpectrum: ComplexBuffer
    /// With enough overscan, lines are fitted there, and the readout
    /// spectrum only has to show where they are: a real transform of the
    /// background samples. Without, the exact fits need the selection's
    /// transform too: both packed as one complex transform.
    let linesFromOverscan: Bool
    /// Per channel: whether any of its image pixels is unmasked (a channel
    /// masked whole, e.g. a noisy one, yields only zeros: its lines do not matter).
    let liveChannels: [Bool]
    /// Per channel: the interference lines of the dark frames (radians per sample).
    public let darkLines: [[Double]]
    let sequenceLines: FFTLines?
    let sequencePlan: FFTPlan2D?
    /// The readout transform's length: the sequence zero-padded (padding is
    /// not background, so the fits stay exact) to a length FFTW is fast at.
    let transformLength: Int
    // Downsampling as a pruned 2-D transform: real-to-complex rows of the
    // crop, only the kept columns of their spectra transformed down the
    // rows, then the kept block transformed back (3/8 of a full transform).
    let realCrop: ComplexBuffer
    let rowSpectra: ComplexBuffer
    let keptColumns: ComplexBuffer
    let outputBuffer: ComplexBuffer
    let rowPlan: FFTLines?
    let columnPlan: FFTLines?
    let outputPlan: FFTPlan2D?
    /// The taper per kept frequency, in the output's FFT order (nil: sharp cut).
    let taper: [Float]?
    // Scratch owned for the cleaner's life: raw pointers, so the hot loops
    // pay no exclusivity or uniqueness checks on class-held arrays.
    /// Per raw pixel: the dark mean (zero without darks or with their
    /// subtraction off), and the same at the overscan positions,
    /// `[(channel * rows + y) * overscan + m]`, read contiguously by the gather.
    let dark: UnsafeMutableBufferPointer<Float>
    let darkOverscan: UnsafeMutableBufferPointer<Float>
    /// The frame's overscan less the dark mean, in `darkOverscan`'s layout;
    /// after the offset fits, less the offsets too.
    let overscanSamples: UnsafeMutableBufferPointer<Double>
    /// Per raw pixel: the noise deviation a background sample stays within
    /// (times the limit), 1 without darks (the overscan's noise scales it
    /// per frame), -1 for dead and hot pixels, which are never background.
    let backgroundScale: UnsafeMutableBufferPointer<Float>
    /// Per image pixel: 1 / beamstop transmission, 0 where masked.
    let photonFactor: UnsafeMutableBufferPointer<Float>
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
    let overscanCheck: FFTLines?
    let overscanSeries: ComplexBuffer
    let overscanSpectra: ComplexBuffer
    /// A Hann window down the rows: a strong line's leakage falls fast.
    let overscanWindow: [Float]
    /// A periodogram bin above this many times the median is a line.
    let overscanAlarm: Double
    let offsetWeights: [Double]

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

    func clean(_ raw: UnsafeBufferPointer<Float>) throws -> CleanFrame {
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

    func timedValue<T>(_ step: String, _ body: () throws -> T) throws -> T {
        var value: T?
        try timed(step) { value = try body() }
        return value!
    }

    @inline(__always)
    func timed(_ step: String, _ body: () throws -> Void) throws {
        guard recordTimings else { return try body() }
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        stepSeconds[step, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    }
}
