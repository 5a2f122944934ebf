import CXI
import Engines
import Foundation
import Numerics
import Recon
import ReconMPI
import SwiftMPI

/// The one path from clean frames to a running engine and from the engine
/// to its file, shared by `recon` (frames read from a file) and the live
/// session (frames placed as they arrive), so both solve and write alike.
public enum SolverInput {
    /// A clean frame's photons (row-major, centred) as the solver's
    /// amplitudes: zero frequency at index 0, negative counts read as 0.
    public static func amplitudes(_ photons: ArraySlice<Float>, side m: Int) -> [Float] {
        let corner = Array2D(height: m, width: m, values: Array(photons)).fftShifted(inverse: true)
        return corner.values.map { max(0, $0).squareRoot() }
    }

    /// The solver's mask from a CXI mask (0: valid pixel; nil: all valid),
    /// 1 where a pixel is used, zero frequency at index 0.
    public static func mask(_ cxiMask: [UInt32]?, side m: Int) -> [Float] {
        let valid = (cxiMask ?? [UInt32](repeating: 0, count: m * m)).map { Float($0 == 0 ? 1 : 0) }
        return Array2D(height: m, width: m, values: valid).fftShifted(inverse: true).values
    }

    /// Collective: the mean frame over every rank's summed photons (`sums`
    /// per pixel, over `count` frames here), or nil where no rank had one.
    public static func meanFrame(sums: [Double], count: Int, side m: Int, comm: Communicator) throws -> Array2D<Float>? {
        var all = sums + [Double(count)]
        try all.withUnsafeMutableBufferPointer { try comm.sum($0) }
        let total = all.removeLast()
        guard total > 0 else { return nil }
        return Array2D(height: m, width: m, values: all.map { Float($0 / total) })
    }

    /// Collective: the engine over this rank's frames, after the FFT
    /// wisdom (when asked for) is shared, so every rank plans alike.
    public static func engine(comm: Communicator, layout: TileLayout, frames: LocalFrames, mask: [Float],
                              probe: Array2D<Complex<Float>>, options: EngineOptions) throws -> any ReconstructionEngine {
        if let wisdom = options.fftWisdom {
            try FFTWisdom.share(file: wisdom, frameSize: probe.height, options: options, over: comm)
        }
        return try EngineRegistry.make(comm: comm, layout: layout, frames: frames, mask: mask, probe: probe, options: options)
    }

    /// What the file records of a solve: the engine's object tiles, probe
    /// and history, with the settings it ran with.
    public static func result(engine: any ReconstructionEngine, layout: TileLayout, pixelSize: Double, truthError: [Double],
                              scan: CXIScan, options: EngineOptions, command: String, version: String) throws -> ReconstructionWriter.Result {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let parameters = String(decoding: try encoder.encode(options), as: UTF8.self)
        return ReconstructionWriter.Result(layout: layout, pixelSize: pixelSize, probeModes: engine.model.probeModes, history: engine.history,
                                           truthError: truthError, scan: scan, parameters: parameters, command: command, version: version)
    }
}
