import Foundation
import Numerics
@testable import Preview
import Recon
import SwiftPNG
import Testing

@Suite struct PreviewTests {
    /// The grey scale spans the 1st-99th percentile: one wild pixel does not
    /// squash the rest into a single level.
    @Test func greyScaleIgnoresOutliers() {
        var values = (0..<400).map { Float($0 % 20) }
        values[7] = 1e6
        let image = Rendering.grey(values, height: 20, width: 20)
        #expect(image.pixels[7] == 255)
        #expect(image.pixels[0] == 0)
        #expect(Set(image.pixels).count > 15)
    }

    /// The global phase, which no reconstruction fixes, is removed.
    @Test func relativePhaseRemovesTheGlobalPhase() {
        let values = (0..<50).map { Complex<Float>.init(length: 1, phase: 1.3 + 0.1 * Float($0 % 2)) }
        let phases = Rendering.relativePhase(values)
        #expect(phases.allSatisfy { abs(abs($0) - 0.05) < 1e-4 })
    }

    @Test func errorPlotDrawsEachSeriesAndBridgesGaps() {
        let fourier = (0..<50).map { 0.5 * pow(0.9, Double($0)) }
        let truth = (0..<50).map { $0 % 10 == 9 ? 0.2 : Double.nan }
        let image = ErrorPlot.render([.init(name: "Fourier error", values: fourier, colour: (200, 40, 40)),
                                      .init(name: "NRMSE against truth", values: truth, colour: (40, 80, 200))])
        func count(_ c: (UInt8, UInt8, UInt8)) -> Int {
            stride(from: 0, to: image.pixels.count, by: 3).filter {
                image.pixels[$0] == c.0 && image.pixels[$0 + 1] == c.1 && image.pixels[$0 + 2] == c.2
            }.count
        }
        #expect(count((200, 40, 40)) > 300)
        // Five measured points joined across the width: a line, not five dots.
        #expect(count((40, 80, 200)) > 300)
    }

    /// Whether `text` is drawn in black somewhere in `image` (read bottom to top when `vertical`).
    func shows(_ image: Raster, _ text: String, vertical: Bool = false) -> Bool {
        var stamp = Raster(width: Raster.textWidth(text), height: FixedFont.height, rgb: true, fill: 255)
        stamp.text(text, y: 0, x: 0)
        var ink: [(Int, Int)] = []
        for y in 0..<stamp.height { for x in 0..<stamp.width where stamp.pixels[3 * (y * stamp.width + x)] == 0 {
            ink.append(vertical ? (stamp.width - 1 - x, y) : (y, x))
        } }
        let (h, w) = vertical ? (stamp.width, stamp.height) : (stamp.height, stamp.width)
        func black(_ y: Int, _ x: Int) -> Bool { image.pixels[3 * (y * image.width + x)] == 0 && image.pixels[3 * (y * image.width + x) + 1] == 0 }
        for y in 0...(image.height - h) {
            for x in 0...(image.width - w) where black(y + ink[0].0, x + ink[0].1) {
                if ink.allSatisfy({ black(y + $0.0, x + $0.1) }) { return true }
            }
        }
        return false
    }

    @Test func plotsCarryATitleAxisLabelsWithUnitsAndALegend() throws {
        let errors = ErrorPlot.render([.init(name: "Fourier error", values: (0..<40).map { 0.3 * pow(0.9, Double($0)) }, colour: (200, 40, 40)),
                                       .init(name: "NRMSE against truth", values: (0..<40).map { $0 == 39 ? 0.05 : .nan }, colour: (40, 80, 200))])
        for label in ["Reconstruction error per iteration", "iteration", "Fourier error", "NRMSE against truth", "1e-2", "40"] {
            #expect(shows(errors, label), "\(label)")
        }
        #expect(shows(errors, "error (log scale)", vertical: true))
        #expect(!shows(errors, "no such label"))
        let point = { (r: Int, e: Double, over: Bool) in
            ScalingPlot.Point(ranks: r, efficiency: e, haloBytes: 1e5 * Double(r), modelHaloBytes: 1.1e5 * Double(r), allreduceBytes: 8e6, oversubscribed: over)
        }
        let scaling = ScalingPlot.render(strong: [point(1, 1, false), point(2, 0.9, false), point(4, 0.7, true)], weak: [point(1, 1, false), point(4, 0.8, true)])
        for label in ["Parallel efficiency", "Bytes sent per rank and iteration", "MPI ranks (log 2 scale)", "strong scaling", "weak scaling",
                      "oversubscribed", "halo exchange, counted", "halo exchange, model", "whole-object allreduce", "0.75", "1e6"] {
            #expect(shows(scaling, label), "\(label)")
        }
        #expect(shows(scaling, "efficiency (1 = ideal)", vertical: true) && shows(scaling, "bytes (log scale)", vertical: true))
        if let dir = ProcessInfo.processInfo.environment["NS_PLOT_SAMPLES"] {
            try errors.writePNG(dir + "/errors.png")
            try scaling.writePNG(dir + "/scaling.png")
        }
    }

    @Test func writerReplacesFiveImages() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ns-preview-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = try PreviewWriter(directory: dir + "/nested")
        let object = Array2D(height: 30, width: 40) { y, x in Complex<Float>(length: 1 - Float(y) / 100, phase: Float(x) / 40) }
        let probe = Array2D(height: 16, width: 16) { y, x in Complex<Float>(Float(y), Float(x)) }
        for _ in 0..<2 {
            try writer.write(object: object, region: nil, probe: probe, fourierErrors: [1, 0.5, 0.2], truthErrors: [.nan, 0.3, 0.1])
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: dir + "/nested").sorted()
        #expect(names == PreviewWriter.files.sorted())
        let amplitude = try PNGImage.readGray(dir + "/nested/object_amplitude.png")
        #expect(amplitude.height == 30 && amplitude.width == 40)
        // Amplitude falls with y: the top row is bright, the bottom dark.
        #expect(amplitude.values[0] > 0.9 && amplitude.values[29 * 40] < 0.1)
        #expect(throws: PreviewError.self) { try PreviewWriter(directory: "/proc/no-such-place/x") }
    }
}
