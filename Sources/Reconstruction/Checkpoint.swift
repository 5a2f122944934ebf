import CXI
import Engines
import Foundation
import Numerics
import Recon
import SwiftHDF5
import SwiftMPI

/// A reconstruction's state in one HDF5 file, written and read in parallel:
/// the object (each rank its owned tile), the probe, the engine's own state
/// (DM's exit waves, each rank its frames; ML's gradients and directions,
/// each rank its owned tile, and its numbers), and the history. Any rank count whose tiles fit
/// the scan can resume it: each rank reads back its own region and frames.
public enum Checkpoint {
    static let group = "/checkpoint"

    /// Written aside and renamed once complete, so a job killed while writing
    /// (a time limit reached) still has its previous checkpoint.
    public static func write(_ job: ReconstructionJob, to path: String) throws {
        let m = job.layout.frameSize, area = job.layout.objectHeight * job.layout.objectWidth
        let stateValues = job.engine.state.map { part in
            switch part.shape {
            case .frames: job.scan.frames * part.layers * m * m
            case .region: area
            case .probe: m * m
            }
        }.reduce(0, +)
        let size = Double(area + job.engine.model.modes * m * m + stateValues) * 8 + Double(job.engine.history.count) * 24
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
        try g.write(engine.model.probeModes.flatMap(\.values), to: "probe", shape: probeShape(engine.model))
        for part in engine.state {
            switch part.shape {
            case .frames:
                let inner = part.frameDimensions(size: m), per = inner.reduce(1, *)
                let frames = try g.createDataset(part.name, of: Complex<Float>.self, shape: [job.scan.frames] + inner)
                // Each rank its own frames, independently: the counts differ between ranks.
                let mine = layout.frames(of: comm.rank)
                for (run, first) in runs(mine) {
                    let start = first * per
                    try frames.write(UnsafeBufferPointer(rebasing: part.values[start..<(start + run.count * per)]),
                                     offset: [run.lowerBound] + inner.map { _ in 0 }, count: [run.count] + inner, collective: false)
                }
            case .region:
                // Like the object: each rank its owned tile, cut from its region.
                let whole = try g.createDataset(part.name, of: Complex<Float>.self, shape: [layout.objectHeight, layout.objectWidth])
                let region = layout.regions[comm.rank]
                var owned: [Complex<Float>] = []
                owned.reserveCapacity(tile.height * tile.width)
                for y in tile.y0..<tile.y1 {
                    let row = (y - region.y0) * region.width + (tile.x0 - region.x0)
                    owned += part.values[row..<(row + tile.width)]
                }
                try whole.write(owned, offset: [tile.y0, tile.x0], count: [tile.height, tile.width])
            case .probe:
                try g.write(Array(part.values), to: part.name, shape: [m, m])
            }
        }
        for (name, value) in engine.stateNumbers.sorted(by: { $0.key < $1.key }) {
            try g.write([value], to: name, shape: [1])
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
        let shape = try read(file, "shape", as: Int64.self, shape: [4], in: path).map(Int.init)
        let expected = [job.scan.frames, m, layout.objectHeight, layout.objectWidth]
        guard shape == expected else {
            throw ReconstructionError("\(path): a checkpoint of \(shape[0]) frames of \(shape[1])x\(shape[1]) on a \(shape[2])x\(shape[3]) object; this scan has \(expected[0]) frames of \(m)x\(m) on \(expected[2])x\(expected[3])")
        }
        let region = layout.regions[comm.rank]
        let objectData = try file.openDataset(group + "/object")
        guard try objectData.shape == [layout.objectHeight, layout.objectWidth] else {
            throw ReconstructionError("\(path): \(group)/object is \(try objectData.shape); this scan needs \([layout.objectHeight, layout.objectWidth])")
        }
        let object = try objectData.read(Complex<Float>.self, offset: [region.y0, region.x0], count: [region.height, region.width])
        let probe = try read(file, "probe", as: Complex<Float>.self, shape: probeShape(job.engine.model), in: path)
        // One value per iteration done, no more than a run may have.
        let iterations = try file.openDataset(group + "/fourier_error").shape
        guard iterations.count == 1, iterations[0] <= maxIterations else {
            throw ReconstructionError("\(path): \(group)/fourier_error is \(iterations); a history is one value per iteration, at most \(maxIterations)")
        }
        let errors = try read(file, "fourier_error", as: Double.self, shape: iterations, in: path)
        let seconds = try read(file, "seconds", as: Double.self, shape: iterations, in: path)
        let history = zip(errors, seconds).enumerated().map { IterationStats(iteration: $0.offset, fourierError: $0.element.0, seconds: $0.element.1) }
        try job.engine.model.restore(object: object, probe: probe, history: history)
        // The engine of the sequence that runs the next iteration.
        try job.continueEngine(at: history.count)
        // The engine's own state where the checkpoint holds all of it under
        // the engine's names for it; else the engine starts it from object and probe.
        let wanted = job.engine.state, numbers = Array(job.engine.stateNumbers.keys)
        var saved: EngineState? = nil
        if (wanted.map(\.name) + numbers).allSatisfy({ file.exists(group + "/" + $0) }) {
            var state = EngineState(parts: [:], numbers: [:])
            for part in wanted {
                let dataset = try file.openDataset(group + "/" + part.name)
                let expected = switch part.shape {
                case .frames: [job.scan.frames] + part.frameDimensions(size: m)
                case .region: [layout.objectHeight, layout.objectWidth]
                case .probe: [m, m]
                }
                let found = try dataset.shape
                guard found == expected else {
                    throw ReconstructionError("\(path): \(group)/\(part.name) is \(found); this scan needs \(expected)")
                }
                switch part.shape {
                case .frames:
                    let mine = layout.frames(of: comm.rank)
                    let inner = part.frameDimensions(size: m)
                    var values: [Complex<Float>] = []
                    values.reserveCapacity(mine.count * inner.reduce(1, *))
                    for (run, _) in runs(mine) {
                        values += try dataset.read(Complex<Float>.self, offset: [run.lowerBound] + inner.map { _ in 0 },
                                                   count: [run.count] + inner)
                    }
                    state.parts[part.name] = values
                case .region:
                    state.parts[part.name] = try dataset.read(Complex<Float>.self, offset: [region.y0, region.x0],
                                                              count: [region.height, region.width])
                case .probe:
                    state.parts[part.name] = try dataset.read(Complex<Float>.self)
                }
            }
            for name in numbers { state.numbers[name] = try read(file, name, as: Double.self, shape: [1], in: path).first }
            saved = state
        }
        try job.engine.restore(state: saved)
        job.restoreTruthError(try read(file, "truth_nrmse", as: Double.self, shape: iterations, in: path))
        try file.close()
        try comm.barrier()
    }

    /// The probe dataset's shape: (y, x), or (modes, y, x).
    static func probeShape(_ model: PtychoModel) -> [Int] {
        model.modes == 1 ? [model.frameSize, model.frameSize] : [model.modes, model.frameSize, model.frameSize]
    }

    /// The most iterations a checkpoint's history may hold (the most a run may ask for).
    static let maxIterations = 1_000_000

    /// A dataset of the checkpoint's group, read only once its shape is the
    /// one this scan needs: a damaged or foreign file is refused by name, and
    /// nothing is allocated from sizes it claims.
    private static func read<T: HDF5Element>(_ file: HDF5File, _ name: String, as type: T.Type, shape expected: [Int],
                                             in path: String) throws -> [T] {
        let dataset = try file.openDataset(group + "/" + name)
        let found = try dataset.shape
        guard found == expected else {
            throw ReconstructionError("\(path): \(group)/\(name) is \(found); this scan needs \(expected)")
        }
        return try dataset.read(T.self)
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
