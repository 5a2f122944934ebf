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
        let image = ErrorPlot.render([.init(values: fourier, colour: (200, 40, 40)), .init(values: truth, colour: (40, 80, 200))])
        func count(_ c: (UInt8, UInt8, UInt8)) -> Int {
            stride(from: 0, to: image.pixels.count, by: 3).filter {
                image.pixels[$0] == c.0 && image.pixels[$0 + 1] == c.1 && image.pixels[$0 + 2] == c.2
            }.count
        }
        #expect(count((200, 40, 40)) > 300)
        // Five measured points joined across the width: a line, not five dots.
        #expect(count((40, 80, 200)) > 300)
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
