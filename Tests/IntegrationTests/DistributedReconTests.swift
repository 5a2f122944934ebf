import CXI
import Foundation
import Numerics
import Recon
import Simulator
import SwiftHDF5
import Testing

/// The distributed solve under mpirun must equal the single-rank solve, for
/// each engine with the probe update on: the classic parallel-only bug.
@Suite(.serialized) struct DistributedReconTests {
    static let scan: String = {
        let path = NSTemporaryDirectory() + "ns-recon-scan-\(UUID().uuidString).cxi"
        var config = SimulationConfig.standard
        config.geometry.frameSize = 64
        config.geometry.detectorPixelSize = 120e-6
        config.zonePlate.defocus = 15e-6
        config.scan = Scan(pattern: .spiral(points: 40), step: 200e-9, jitter: 0, seed: 2)
        config.photonsPerFrame = 1e6
        config.beamstop = Beamstop(radius: 2)
        let sim = try! Simulation(config)
        _ = try! SimulatedScanWriter.write(sim, to: path)
        return path
    }()

    struct Result {
        var object: [Complex<Float>]
        var probe: [Complex<Float>]
        var errors: [Double]
        var tiles: [Int64]
    }

    func reconstruct(ranks: Int, _ extra: [String]) throws -> Result {
        let out = NSTemporaryDirectory() + "ns-recon-\(ranks)-\(UUID().uuidString).cxi"
        defer { try? FileManager.default.removeItem(atPath: out) }
        // --verify-output: every rank's tile as written equals its tile in memory, or the run fails.
        let run = try MPIRunner.run(ranks: ranks, ["recon", Self.scan, "-o", out, "--quiet", "--probe-defocus", "15e-6",
                                                   "--verify-output"] + extra)
        try #require(run.status == 0, "\(ranks) ranks: \(run.stderr)")
        let f = try HDF5File(path: out, mode: .readOnly)
        return Result(object: try f.read("/entry_1/image_1/data", as: Complex<Float>.self),
                      probe: try f.read("/entry_1/instrument_1/source_1/illumination", as: Complex<Float>.self),
                      errors: try f.read("/entry_1/image_1/process_1/ns_fourier_error", as: Double.self),
                      tiles: try f.read("/entry_1/image_1/process_1/ns_tiles", as: Int64.self))
    }

    static func relative(_ a: [Complex<Float>], _ b: [Complex<Float>]) -> Double {
        var d = 0.0, n = 0.0
        for (x, y) in zip(a, b) { d += Double((x - y).lengthSquared); n += Double(x.lengthSquared) }
        return (d / n).squareRoot()
    }

    @Test(arguments: [["--algorithm", "dm"], ["--algorithm", "raar", "--beta", "0.8"], ["--algorithm", "ml"],
                      ["--engines", "dm:3,ml:3"], ["--algorithm", "rpie", "--engine-parameter", "minibatch=8"],
                      ["--algorithm", "dm", "--probe-modes", "3"], ["--algorithm", "raar", "--beta", "0.8", "--probe-modes", "2"]])
    func anyRankCountGivesTheSingleRankResult(engine: [String]) throws {
        // Estimated plans: measured ones are chosen per process and round
        // differently, which the solve amplifies whatever the rank count
        // (sharedWisdomGivesBitIdenticalMeasuredRuns covers that).
        let options = engine + ["--iterations", "6", "--probe-start", "1", "--fft-planning", "estimate"]
        let serial = try reconstruct(ranks: 1, options)
        #expect(serial.tiles.count == 4)
        for ranks in [2, 3, 4] {
            let parallel = try reconstruct(ranks: ranks, options)
            #expect(parallel.tiles.count == 4 * ranks)
            #expect(parallel.object.count == serial.object.count)
            // Float rounding only (sums associate differently, and DM amplifies it a
            // little per iteration; ML's step and direction are quotients of such
            // sums, so it amplifies more); a wrong halo or tile shows up as 1e-2 or more.
            let ml = engine.contains { $0 == "ml" || $0.contains("ml:") }
            #expect(Self.relative(parallel.object, serial.object) < 1e-4, "\(ranks) ranks object")
            #expect(Self.relative(parallel.probe, serial.probe) < (ml ? 1e-4 : 1e-5), "\(ranks) ranks probe")
            for (p, s) in zip(parallel.errors, serial.errors) { #expect(abs(p - s) <= (ml ? 1e-4 : 1e-5) * s, "\(ranks) ranks error") }
        }
    }

    /// With FFTW's heuristic plans, the same run twice gives the same bits
    /// (the reductions and halo sums have a fixed order on every rank).
    @Test func estimatedPlansGiveBitIdenticalRuns() throws {
        let options = ["--iterations", "30", "--probe-start", "1", "--fft-planning", "estimate"]
        let a = try reconstruct(ranks: 2, options), b = try reconstruct(ranks: 2, options)
        #expect(a.object == b.object && a.probe == b.probe && a.errors == b.errors)
    }

    /// Measured plans kept as wisdom: rank 0 measures once and saves, every
    /// rank and every later run plans from it, so runs are bit-identical
    /// at measure's speed; a damaged file stops every rank with its name.
    @Test func sharedWisdomGivesBitIdenticalMeasuredRuns() throws {
        let wisdom = NSTemporaryDirectory() + "ns-wisdom-\(UUID().uuidString).txt"
        defer { try? FileManager.default.removeItem(atPath: wisdom) }
        let options = ["--iterations", "30", "--probe-start", "1", "--fft-planning", "measure", "--fft-wisdom", wisdom]
        let a = try reconstruct(ranks: 2, options)
        let saved = try String(contentsOfFile: wisdom, encoding: .utf8)
        #expect(saved.contains("fftw-") && saved.contains("wisdom"), "\(saved.prefix(80))")
        let b = try reconstruct(ranks: 2, options)
        #expect(a.object == b.object && a.probe == b.probe && a.errors == b.errors)
        // Nothing new was measured the second time: the file is as it was.
        #expect(try String(contentsOfFile: wisdom, encoding: .utf8) == saved)
        try "not wisdom".write(toFile: wisdom, atomically: true, encoding: .utf8)
        let out = NSTemporaryDirectory() + "ns-wisdom-out-\(UUID().uuidString).cxi"
        let bad = try MPIRunner.run(ranks: 2, ["recon", Self.scan, "-o", out, "--iterations", "1", "--fft-wisdom", wisdom], timeout: 60)
        #expect(bad.status != 0 && bad.stderr.contains(wisdom) && bad.stderr.contains("not FFTW single-precision wisdom"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func outputIsStandardCXI() throws {
        let out = NSTemporaryDirectory() + "ns-recon-out-\(UUID().uuidString).cxi"
        let previews = NSTemporaryDirectory() + "ns-recon-preview-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: out); try? FileManager.default.removeItem(atPath: previews) }
        let run = try MPIRunner.run(ranks: 2, ["recon", Self.scan, "-o", out, "--iterations", "3", "--tiles", "2x1",
                                               "--probe-defocus", "15e-6", "--preview", previews, "--preview-every", "2",
                                               "--verify-output"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("as 2x1 tiles"))
        #expect(run.stdout.contains("iter    3/3"))
        #expect(run.stdout.contains("object NRMSE against the truth"))
        #expect(run.stdout.contains("first probe from the recorded zone plate (240 µm, outer zone 40 nm, stop 100 µm) at 15.0 µm defocus"))
        #expect(run.stdout.contains("all 2 tiles and the probe read back equal to memory"))
        let f = try HDF5File(path: out, mode: .readOnly)
        let truthShape = try CXIReader(path: Self.scan).shape(of: "/entry_1/ns_truth/object")
        #expect(try f.openDataset("/entry_1/image_1/data").shape == truthShape)
        #expect(try f.openDataset("/entry_1/image_1/data").storedType == .complex(bits: 64))
        #expect(try f.readString("/entry_1/image_1/data_space") == "real")
        #expect(try f.readString("/entry_1/image_1/process_1/program") == "nanosurveyor")
        #expect(try f.readString("/entry_1/image_1/process_1/command").contains("--tiles 2x1"))
        #expect(try f.readString("/entry_1/image_1/process_1/ns_parameters").contains("\"algorithm\":\"dm\""))
        #expect(try f.read("/entry_1/image_1/process_1/ns_fourier_error", as: Double.self).count == 3)
        #expect(try f.read("/cxi_version", as: Int32.self) == [160])
        #expect(try f.read("/entry_1/instrument_1/ns_optics/defocus", as: Double.self) == [15e-6])
        let tiles = try f.read("/entry_1/image_1/process_1/ns_tiles", as: Int64.self)
        #expect(tiles[0] == 0 && tiles[2] == tiles[4] && tiles[7] == Int64(truthShape[1]))  // two bands stacked in y
        // Every pixel of the object came from some rank's tile: none left at zero.
        #expect(try f.read("/entry_1/image_1/data", as: Complex<Float>.self).allSatisfy { $0.length > 0 })
        // Previews of the whole object (assembled from both tiles) and the probe.
        let names = try FileManager.default.contentsOfDirectory(atPath: previews).sorted()
        #expect(names == ["errors.png", "object_amplitude.png", "object_phase.png", "probe_amplitude.png", "probe_phase.png"])
        #expect(try Self.pngSize(previews + "/object_phase.png") == (truthShape[0], truthShape[1]))
        #expect(try Self.pngSize(previews + "/probe_amplitude.png") == (64, 64))
    }

    /// (height, width) from a PNG's IHDR chunk.
    static func pngSize(_ path: String) throws -> (Int, Int) {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try #require(data.count > 24 && data[1] == 0x50 && data[2] == 0x4E && data[3] == 0x47, "\(path) is not a PNG")
        func be32(_ at: Int) -> Int { data[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
        return (be32(20), be32(16))
    }

    @Test func badInputStopsEveryRankWithOneClearMessage() throws {
        let few = NSTemporaryDirectory() + "ns-recon-few-\(UUID().uuidString).cxi"
        defer { try? FileManager.default.removeItem(atPath: few) }
        var config = SimulationConfig.standard
        config.geometry.frameSize = 64
        config.geometry.detectorPixelSize = 120e-6
        config.zonePlate.defocus = 15e-6
        config.scan = Scan(pattern: .raster(rows: 1, columns: 3), step: 200e-9)
        _ = try SimulatedScanWriter.write(try Simulation(config), to: few)

        let tooMany = try MPIRunner.run(ranks: 4, ["recon", few, "-o", "/tmp/never.cxi"], timeout: 60)
        #expect(tooMany.status != 0)
        #expect(tooMany.stderr.contains("4 ranks for 3 frames"))
        let grid = try MPIRunner.run(ranks: 2, ["recon", few, "-o", "/tmp/never.cxi", "--tiles", "3x1"], timeout: 60)
        #expect(grid.status != 0)
        #expect(grid.stderr.contains("3x1 tile grid does not fit 2 ranks"))
        let missing = try MPIRunner.run(ranks: 2, ["recon", "/nonexistent.cxi"], timeout: 60)
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("/nonexistent.cxi") && missing.stderr.contains("no such file"))
        let badTiles = try MPIRunner.run(ranks: 1, ["recon", few, "--tiles", "2by2"], timeout: 60)
        #expect(badTiles.stderr.contains("stages.solve.tiles: must look like \"2x3\", got \"2by2\" (given as --tiles)"))
    }

    /// An unknown engine or a bad engine parameter is refused before any
    /// work, with the declaration's words, however it is given; a parameter
    /// given by its declared name reaches the engine.
    @Test func enginesAndTheirParametersAreCheckedByTheirDeclarations() throws {
        let prefix = "stages.solve."
        let refused: [([String], String)] = [
            (["--algorithm", "rar"], prefix + "algorithm: 'rar' is not one of 'dm', 'raar', 'ml', 'rpie' (did you mean 'raar'?) (given as --algorithm)"),
            (["--set", "stages.solve.algorithm=ml2"], prefix + "algorithm: 'ml2' is not one of 'dm', 'raar', 'ml', 'rpie'"),
            (["--engine-parameter", "beta=2"], prefix + "beta: 2.0 is out of range 1e-06...1.0 (given as --engine-parameter beta=2)"),
            (["--engine-parameter", "betta=0.5"], "--engine-parameter betta=0.5: no engine parameter is named 'betta' (did you mean 'beta'?)"),
            (["--engine-parameter", "iterations=-1"], prefix + "iterations: -1 is out of range 0...1000000 (given as --engine-parameter iterations=-1)"),
        ]
        for (arguments, message) in refused {
            let run = try MPIRunner.run(ranks: nil, ["recon", Self.scan, "-o", "/tmp/never.cxi"] + arguments, timeout: 60)
            #expect(run.status != 0 && run.stderr.contains(message), "\(arguments): \(run.stderr)")
        }
        let shown = try MPIRunner.run(ranks: nil, ["recon", Self.scan, "--algorithm", "raar", "--engine-parameter", "beta=0.8",
                                                   "--engine-parameter", "power_bound=none", "--show-parameters"], timeout: 60)
        #expect(shown.status == 0)
        for line in ["beta                  = 0.8   (command line)", "power_bound           = \"none\"   (command line)"] {
            #expect(shown.stdout.contains(line), "\(shown.stdout)")
        }
    }

    /// A file without optics still reconstructs, from the mean pattern, and
    /// the run says why its first probe may be poor.
    @Test func aScanWithoutOpticsStartsFromTheMeanPatternAndSaysSo() throws {
        let bare = NSTemporaryDirectory() + "ns-recon-bare-\(UUID().uuidString).cxi"
        let out = bare + "-recon.cxi"
        defer { for p in [bare, out] { try? FileManager.default.removeItem(atPath: p) } }
        var config = SimulationConfig.standard
        config.geometry.frameSize = 64
        config.geometry.detectorPixelSize = 120e-6
        config.scan = Scan(pattern: .raster(rows: 2, columns: 2), step: 200e-9)
        var options = SimulatedScanWriter.Options()
        options.recordOptics = false
        _ = try SimulatedScanWriter.write(try Simulation(config), to: bare, options: options)
        let run = try MPIRunner.run(ranks: 2, ["recon", bare, "-o", out, "--iterations", "1"], timeout: 60)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("first probe from the mean pattern, flat phase"))
        let warnings = run.stderr.split(separator: "\n").filter { $0.contains("records no optics") }
        #expect(warnings.count == 1, "\(run.stderr)")  // from rank 0 alone
        let chosen = try MPIRunner.run(ranks: 1, ["recon", bare, "-o", out, "--iterations", "1", "--first-probe", "mean",
                                                  "--probe-defocus", "20e-6"], timeout: 60)
        #expect(chosen.status == 0 && !chosen.stderr.contains("optics"), "\(chosen.stderr)")
        #expect(chosen.stdout.contains("first probe from the mean pattern at 20.0 µm defocus"))
        let wrong = try MPIRunner.run(ranks: 1, ["recon", bare, "-o", out, "--first-probe", "lens"], timeout: 60)
        #expect(wrong.status != 0 && wrong.stderr.contains("first_probe"), "\(wrong.stderr)")
    }
}
