import Foundation
import Recon
import SwiftFFTW

/// FFTW wisdom shared by the ranks and kept in a file: rank 0 loads the
/// file, plans (measuring) every transform the engine makes, and hands the
/// wisdom to the other ranks, so every rank runs the same algorithms and a
/// later run that loads the file runs them again: identical runs give
/// identical bits at `measure`'s speed, and planning is paid once per machine.
public enum FFTWisdom {
    /// Collective. Returns whether rank 0 measured anything new (and so rewrote the file).
    @discardableResult
    public static func share(file: String, frameSize m: Int, options: EngineOptions, over comm: Collective) throws -> Bool {
        var text = "", learned = false
        var failure = ""
        if comm.rank == 0 {
            do {
                // Wisdom for a few transforms is kilobytes; anything far larger is not wisdom.
                if let size = (try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? Int, size > 64 << 20 {
                    throw SimulationError.invalid("\(size) bytes is not FFTW wisdom (a few kilobytes)")
                }
                try FFTW.importWisdom(from: file)
                let before = try FFTW.exportWisdom()
                // The engine's transforms: whole batches, and the short batch a
                // rank's last frames make, of every probe mode's exit waves.
                for frames in 1...options.framesPerBatch {
                    let batch = frames * options.probeModes
                    for direction in [FFTPlan2D.Direction.forward, .inverse] {
                        _ = try FFTPlan2D(height: m, width: m, batch: batch, direction: direction, inPlace: true, rigor: options.fftPlanning.rigor)
                    }
                }
                text = try FFTW.exportWisdom()
                learned = text != before
                if learned { try save(to: file) }
            } catch {
                failure = "\(file): \(error)"
            }
        }
        // Every rank learns of a failure on rank 0 and stops alike.
        failure = try comm.broadcast(failure, root: 0)
        guard failure.isEmpty else { throw SimulationError.invalid("FFTW wisdom \(failure)") }
        text = try comm.broadcast(text, root: 0)
        if comm.rank != 0 { try FFTW.importWisdom(text: text) }
        return learned
    }

    /// Beside the file, then renamed over it: a reader never sees half of it.
    private static func save(to file: String) throws {
        let temporary = file + ".partial-\(getpid())"
        try FFTW.exportWisdom(to: temporary)
        guard rename(temporary, file) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw SimulationError.invalid("cannot rename \(temporary) to \(file): \(reason)")
        }
    }
}
