import Recon
import Testing

@Suite struct GeometryTests {
    @Test func wavelengthOfSoftXRays() {
        // 800 eV -> 1.5498 nm (hc = 1239.842 eV nm).
        let lambda = PhysicalConstants.wavelength(energy: 800 * PhysicalConstants.electronVolt)
        #expect(abs(lambda - 1.549_802e-9) < 1e-14)
    }

    @Test func samplePixelSizeFollowsLambdaZOverNDx() {
        let g = Geometry(energy: 800 * PhysicalConstants.electronVolt, distance: 0.121,
                         detectorPixelSize: 30e-6, frameSize: 256)
        let expected = 1.549_802e-9 * 0.121 / (256 * 30e-6)  // about 24.4 nm
        #expect(abs(g.samplePixelSize - expected) / expected < 1e-6)
        // Halving the frame (downsampling) doubles the sample pixel.
        var half = g
        half.frameSize = 128
        #expect(abs(half.samplePixelSize / g.samplePixelSize - 2) < 1e-12)
        #expect(g.problems().isEmpty)
    }

    @Test func badGeometryNamesEachField() {
        let g = Geometry(energy: -1, distance: .nan, detectorPixelSize: 0, frameSize: 1)
        let problems = g.problems()
        #expect(problems.count == 4)
        #expect(problems[0].hasPrefix("energy"))
        #expect(problems[1].hasPrefix("distance"))
        #expect(problems[2].hasPrefix("detector pixel size"))
        #expect(problems[3].hasPrefix("frame size"))
    }
}
