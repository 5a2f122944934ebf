import Foundation
import SafeOutput
import Numerics
import Recon
import SwiftPNG

public struct PreviewError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public var description: String { "preview '\(path)': \(reason)" }
}

/// Writes the preview images of a reconstruction into one folder, each
/// replaced whole (written aside, then renamed) so a viewer polling the
/// folder never reads half a file.
public struct PreviewWriter: Sendable {
    public let directory: String

    public static let files = ["object_amplitude.png", "object_phase.png", "probe_amplitude.png", "probe_phase.png", "errors.png"]

    public init(directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw PreviewError(path: directory, reason: "cannot create the preview folder: \(error.localizedDescription)")
        }
        self.directory = directory
    }

    /// `region`: the object pixels that set the grey scale (the illuminated ones).
    public func write(object: Array2D<Complex<Float>>, region: [Bool]?, probe: Array2D<Complex<Float>>,
                      fourierErrors: [Double], truthErrors: [Double]) throws {
        let h = object.height, w = object.width
        try save(Rendering.grey(object.values.map(\.length), height: h, width: w, region: region), "object_amplitude.png")
        try save(Rendering.grey(Rendering.relativePhase(object.values, region: region), height: h, width: w, region: region),
                 "object_phase.png")
        let p = probe
        try save(Rendering.grey(p.values.map(\.length), height: p.height, width: p.width), "probe_amplitude.png")
        try save(Rendering.complexColour(p.values, height: p.height, width: p.width), "probe_phase.png")
        try save(ErrorPlot.render([.init(name: "Fourier error", values: fourierErrors, colour: (200, 40, 40)),
                                   .init(name: "NRMSE against truth", values: truthErrors, colour: (40, 80, 200))]), "errors.png")
    }

    private func save(_ image: Raster, _ name: String) throws {
        try image.writePNG((directory as NSString).appendingPathComponent(name))
    }
}

extension Raster {
    /// Written aside and renamed, so a viewer never reads half a file.
    public func writePNG(_ path: String) throws {
        let pending = PendingFile(target: path, token: PendingFile.processToken)
        do {
            try PNGImage.write(pending.temporary, width: width, height: height, pixels: pixels, rgb: rgb)
            try pending.commit()
        } catch {
            pending.discard()
            throw PreviewError(path: path, reason: "cannot write it: \(error)")
        }
    }
}
