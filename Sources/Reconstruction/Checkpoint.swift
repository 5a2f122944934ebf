import CXI
import Foundation
import Numerics
import Recon
import SwiftHDF5
import SwiftMPI

/// A reconstruction's state in one HDF5 file, written and read in parallel:
/// the object (each rank its owned tile), the probe, the engine's own state
/// of every frame when it has one (DM's exit waves; each rank its frames),
/// and the history. Any rank count whose tiles fit
/// the scan can resume it: each rank reads back its own region and frames.
public enum Checkpoint {
    static let group = "/checkpoint"

    /// Written aside and renamed once complete, so a job killed while writing
    /// (a time limit reached) still has its previous checkpoint.
    public static func write(_ job: ReconstructionJob, to path: String) throws {
        let m = job.layout.frameSize
        let size = Double(job.layout.objectHeight * job.layout.objectWidth + (job.scan.frames + 1) * m * m) * 8
            + Double(job.engine.history.count) * 24
        try CollectiveOutput.write(path, comm: job.comm, inputs: [(role: "the scan", path: job.input)], size: size) { aside in
            try write(job, into: aside)
        }
    }

    private static func write(_ job: ReconstructionJob, into aside: String) throws {
        let comm = job.comm, engine = job.engine, layout = job.layout
        let m = layout.frameSize
        let file = try HDF5File(path: aside, mode: .truncate, comm: comm)
        let g = try file.createGroup(group)
        let object = try g.createDataset("object", of: Complex<Float>.self, shape: [layout.objectHeight, layout.objectWidth])
        let tile = layout.tiles[comm.rank]
        try object.write(engine.object(in: tile), offset: [tile.y0, tile.x0], count: [tile.height, tile.width])
        try g.write(engine.currentProbe.values, to: "probe", shape: [m, m])
        if let name = engine.frameStateName {
            let frames = try g.createDataset(name, of: Complex<Float>.self, shape: [job.scan.frames, m, m])
            // Each rank its own frames, independently: the counts differ between ranks.
            let mine = layout.frames(of: comm.rank), values = engine.frameState
            for (run, first) in runs(mine) {
                let start = first * m * m
                try frames.write(UnsafeBufferPointer(rebasing: values[start..<(start + run.count * m * m)]),
                                 offset: [run.lowerBound, 0, 0], count: [run.count, m, m], collective: false)
            }
        }
        try g.write(string: engine.name, to: "engine")
        let history = engine.history
        try g.write(history.map(\.fourierError), to: "fourier_error", shape: [history.count])
        try g.write(history.map(\.seconds), to: "seconds", shape: [history.count])
        try g.write(job.truthError, to: "truth_nrmse", shape: [job.truthError.count])
        try g.write([Int64(job.scan.frames), Int64(m), Int64(layout.objectHeight), Int64(layout.objectWidth)],
                    to: "shape", shape: [4])
        try g.write(string: job.input, to: "input")
        try file.close()
    }

    /// Loads `path` into `job`'s engine (collective): each rank reads its region and frames.
    public static func resume(_ job: ReconstructionJob, from path: String) throws {
        let comm = job.comm, layout = job.layout, m = layout.frameSize
        let file: HDF5File
        do { file = try HDF5File(path: path, mode: .readOnly) } catch {
            throw ReconstructionError("\(path): cannot open the checkpoint: \(error)")
        }
        guard file.exists(group + "/shape") else { throw ReconstructionError("\(path): not a checkpoint (no \(group))") }
        let shape = try file.read(group + "/shape", as: Int64.self).map(Int.init)
        let expected = [job.scan.frames, m, layout.objectHeight, layout.objectWidth]
        guard shape == expected else {
            throw ReconstructionError("\(path): a checkpoint of \(shape[0]) frames of \(shape[1])x\(shape[1]) on a \(shape[2])x\(shape[3]) object; this scan has \(expected[0]) frames of \(m)x\(m) on \(expected[2])x\(expected[3])")
        }
        let region = layout.regions[comm.rank]
        let object = try file.openDataset(group + "/object").read(Complex<Float>.self, offset: [region.y0, region.x0],
                                                                  count: [region.height, region.width])
        let probe = Array2D(height: m, width: m, values: try file.read(group + "/probe", as: Complex<Float>.self))
        let errors = try file.read(group + "/fourier_error", as: Double.self)
        let seconds = try file.read(group + "/seconds", as: Double.self)
        let history = zip(errors, seconds).enumerated().map { IterationStats(iteration: $0.offset, fourierError: $0.element.0, seconds: $0.element.1) }
        try job.engine.model.restore(object: object, probe: probe, history: history)
        // The engine of the sequence that runs the next iteration.
        try job.continueEngine(at: history.count)
        // The engine's own state where the checkpoint holds it under the
        // engine's name for it; else the engine starts it from object and probe.
        var state: [Complex<Float>]? = nil
        if let name = job.engine.frameStateName, file.exists(group + "/" + name) {
            let mine = layout.frames(of: comm.rank)
            let dataset = try file.openDataset(group + "/" + name)
            var values: [Complex<Float>] = []
            values.reserveCapacity(mine.count * m * m)
            for (run, _) in runs(mine) {
                values += try dataset.read(Complex<Float>.self, offset: [run.lowerBound, 0, 0], count: [run.count, m, m])
            }
            state = values
        }
        try job.engine.restore(frameState: state)
        job.restoreTruthError(try file.read(group + "/truth_nrmse", as: Double.self))
        try file.close()
        try comm.barrier()
    }

    /// Contiguous runs of sorted frame indices, with each run's position in the list.
    static func runs(_ indices: [Int]) -> [(Range<Int>, Int)] {
        var out: [(Range<Int>, Int)] = []
        var k = 0
        while k < indices.count {
            var n = 1
            while k + n < indices.count && indices[k + n] == indices[k] + n { n += 1 }
            out.append((indices[k]..<(indices[k] + n), k))
            k += n
        }
        return out
    }
}
