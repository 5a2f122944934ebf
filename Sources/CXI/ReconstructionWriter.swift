import Engines
import Foundation
import Numerics
import Recon
import SwiftHDF5
import SwiftMPI

/// Writes a reconstruction as CXI: the object at /entry_1/image_1/data,
/// each rank writing its own tile collectively; the probe at
/// source_1/illumination; the error history, tile layout and parameters.
public enum ReconstructionWriter {
    public struct Result {
        public var layout: TileLayout
        public var pixelSize: Double
        /// The probe's modes, strongest first (one for a coherent probe).
        public var probeModes: [Array2D<Complex<Float>>]
        public var probe: Array2D<Complex<Float>> { probeModes[0] }
        public var history: [IterationStats]
        /// NRMSE against the truth per iteration (NaN where not computed).
        public var truthError: [Double]
        public var scan: CXIScan
        public var parameters: String
        public var command: String
        public var version: String

        public init(layout: TileLayout, pixelSize: Double, probeModes: [Array2D<Complex<Float>>], history: [IterationStats],
                    truthError: [Double], scan: CXIScan, parameters: String, command: String, version: String) {
            precondition(!probeModes.isEmpty)
            self.layout = layout
            self.pixelSize = pixelSize
            self.probeModes = probeModes
            self.history = history
            self.truthError = truthError
            self.scan = scan
            self.parameters = parameters
            self.command = command
            self.version = version
        }
    }

    /// About the bytes `write` puts in a file (object, probe, positions, history).
    public static func size(of result: Result) -> Double {
        Double(result.layout.objectHeight * result.layout.objectWidth + result.probeModes.count * result.probe.count) * 8
            + Double(result.scan.positions.count) * 32 + Double(result.history.count) * 24
    }

    /// Collective over `comm`: `tile` is this rank's owned tile of the object.
    public static func write(_ path: String, result: Result, tile: [Complex<Float>], comm: Communicator?) throws {
        let rank = comm?.rank ?? 0
        let layout = result.layout
        let file = try HDF5File(path: path, mode: .truncate, comm: comm)
        try file.write(scalar: Int32(160), to: CXIPaths.version)
        let image = try file.createGroup("/entry_1/image_1")
        let data = try image.createDataset("data", of: Complex<Float>.self, shape: [layout.objectHeight, layout.objectWidth])
        let box = layout.tiles[rank]
        try data.write(tile, offset: [box.y0, box.x0], count: [box.height, box.width])
        try image.write(string: "real", to: "data_space")
        try image.write([Double(layout.objectWidth) * result.pixelSize, Double(layout.objectHeight) * result.pixelSize],
                        to: "image_size")
        try image.write(scalar: result.pixelSize, to: "ns_pixel_size")
        let process = try image.createGroup("process_1")
        try process.write(string: "nanosurveyor", to: "program")
        try process.write(string: result.version, to: "version")
        try process.write(string: result.command, to: "command")
        try process.write(string: ISO8601DateFormatter().string(from: Date()), to: "date")
        try process.write(string: result.parameters, to: "ns_parameters")
        let n = result.history.count
        try process.write(result.history.map(\.fourierError), to: "ns_fourier_error", shape: [n])
        try process.write(result.truthError, to: "ns_truth_nrmse", shape: [result.truthError.count])
        try process.write(result.history.map(\.seconds), to: "ns_seconds", shape: [n])
        try process.write(layout.tiles.flatMap { [Int64($0.y0), Int64($0.x0), Int64($0.y1), Int64($0.x1)] },
                          to: "ns_tiles", shape: [layout.ranks, 4])
        try process.write(layout.regions.flatMap { [Int64($0.y0), Int64($0.x0), Int64($0.y1), Int64($0.x1)] },
                          to: "ns_regions", shape: [layout.ranks, 4])
        try process.write(layout.owner.map { Int64($0) }, to: "ns_frame_owner", shape: [layout.owner.count])

        let s = result.scan
        try file.write(scalar: s.energy, to: CXIPaths.energy)
        try file.write(scalar: s.distance, to: CXIPaths.distance)
        try file.write(scalar: s.xPixelSize, to: CXIPaths.xPixelSize)
        try file.write(scalar: s.yPixelSize, to: CXIPaths.yPixelSize)
        try writeProbe(result.probeModes, into: file)
        let translation: [Double] = s.positions.flatMap { [-$0.x, -$0.y, 0] }
        try file.write(translation, to: CXIPaths.translation, shape: [s.positions.count, 3])
        if let optics = s.optics { try CXIOptics.write(optics, to: file) }
        try file.close()
    }

    /// The probe at source_1/illumination: (y, x), or with several modes
    /// (modes, y, x) and each mode's share of the power beside it.
    public static func writeProbe(_ modes: [Array2D<Complex<Float>>], into file: HDF5File) throws {
        guard modes.count > 1 else {
            try file.write(modes[0].values, to: CXIPaths.illumination, shape: modes[0].shape)
            return
        }
        try file.write(modes.flatMap(\.values), to: CXIPaths.illumination, shape: [modes.count] + modes[0].shape)
        try file.write(modes.powerFractions, to: CXIPaths.modePowers, shape: [modes.count])
    }
}
