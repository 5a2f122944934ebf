import ArgumentParser
import CXI
import Foundation

struct ConventionOptions: ParsableArguments {
    @Flag(help: "The file stores probe positions on the object, not sample motion.")
    var probePositions = false
    @Flag(help: "Negate the x translations.")
    var flipX = false
    @Flag(help: "Negate the y translations.")
    var flipY = false
    @Flag(help: "The translations are (y, x) instead of (x, y).")
    var swapXY = false

    var convention: TranslationConvention {
        TranslationConvention(probePositions: probePositions, flipX: flipX, flipY: flipY, swapXY: swapXY)
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarize a CXI file: shapes, geometry, photons per frame, scan extent, and a drawing of the scan.")

    @Argument(help: "The CXI file.")
    var file: String
    @OptionGroup(title: "Translation convention") var convention: ConventionOptions

    func run() throws {
        let reader: CXIReader
        do {
            reader = try CXIReader(path: file, convention: convention.convention)
        } catch let error as CXIError {
            throw ValidationError("\(error)")
        }
        let s = try CXISummary(reader)
        let um = 1e6
        print("file:        \(file)")
        print("frames:      \(s.frames) x \(s.frameShape[0]) x \(s.frameShape[1]) \(s.dataType)\(s.raw ? " (raw fast-CCD frames)" : "")")
        print(String(format: "energy:      %.1f eV (wavelength %.4f nm)", s.energyEV, s.wavelength * 1e9))
        print(String(format: "detector:    %.4f m away, pixels %.1f x %.1f um", s.distance, s.pixelSize.x * um, s.pixelSize.y * um))
        print(String(format: "sample grid: %.2f nm pixels", s.samplePixelSize * 1e9))
        print(String(format: "per frame:   %.4g %@ (min %.4g, max %.4g)", s.frameSums.mean, s.raw ? "ADU" : "photons",
                     s.frameSums.min, s.frameSums.max))
        print(String(format: "scan:        x %.3f..%.3f um, y %.3f..%.3f um, median step %.1f nm",
                     s.extentX.min * um, s.extentX.max * um, s.extentY.min * um, s.extentY.max * um, s.medianStep * 1e9))
        print("mask:        \(s.maskedPixels) flagged pixels; dark frames: \(s.darkFrames); illumination: \(s.hasIllumination ? "yes" : "no"); simulation truth: \(s.hasTruth ? "yes" : "no")")
        print("probe positions (S first, E last; x right, y down):")
        for line in ScanPlot.ascii(reader.scan.positions) { print("  " + line) }
    }
}
