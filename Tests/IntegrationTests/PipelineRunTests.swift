import CXI
import Foundation
import Numerics
import SwiftHDF5
import Testing

/// Pipelines from a file, run under mpirun: the example stage is plugged in
/// by configuration alone, and its output matches the scan it read.
@Suite(.serialized) struct PipelineRunTests {
    func temporary(_ name: String) -> String { NSTemporaryDirectory() + "ns-pipe-\(name)-\(UUID().uuidString.prefix(8))" }

    func write(_ json: String, to path: String) throws {
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
    }

    @Test func theExampleStageRunsOnTwoRanksFromConfigurationAlone() throws {
        let out = temporary("out"), file = temporary("p") + ".json"
        defer { try? FileManager.default.removeItem(atPath: out); try? FileManager.default.removeItem(atPath: file) }
        let scan = DistributedReconTests.scan
        try write("""
            {"pipeline": "stats", "output": {"directory": "\(out)"},
             "stages": [
               {"name": "read", "type": "cxi-frames", "ranks": 1, "path": "\(scan)"},
               {"name": "bright", "type": "frame-statistics", "ranks": "rest", "threshold": 2, "inputs": {"frames": "read.frames"}},
               {"name": "all", "type": "frame-statistics", "ranks": "all", "inputs": {"frames": "read.frames"}}]}
            """, to: file)
        let r = try MPIRunner.run(ranks: 2, ["run", file, "--counts"])
        try #require(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("read    cxi-frames        0\n"), "\(r.stdout)")
        #expect(r.stdout.contains("rank 0: all in 20 out 20, read in 0 out 40"), "\(r.stdout)")
        #expect(r.stdout.contains("rank 1: all in 20 out 20, bright in 40 out 40"), "\(r.stdout)")

        let frames = try HDF5File(path: scan, mode: .readOnly).read(CXIPaths.dataLink, as: Float.self)
        let photons = frames.reduce(0.0) { $0 + Double($1) }
        func totals(_ name: String) throws -> [String] {
            let text = try String(contentsOfFile: "\(out)/\(name).csv", encoding: .utf8)
            return text.split(separator: "\n")[1].split(separator: ",").map(String.init)
        }
        let bright = try totals("bright"), all = try totals("all")
        #expect(bright == ["40", "\(photons)", "\(frames.filter { $0 >= 2 }.count)", "1"])
        #expect(all == ["40", "\(photons)", "\(frames.filter { $0 >= 1 }.count)", "2"])
    }

    @Test func aBadFileStopsEveryRankWithOneMessage() throws {
        let file = temporary("bad") + ".json"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try write("""
            {"pipeline": "bad", "stages": [
               {"name": "read", "type": "cxi-frames", "ranks": 2, "path": "x.cxi"},
               {"name": "s", "type": "frame-statistics", "ranks": "rest", "treshold": 2, "inputs": {"frames": "read.frames"}}]}
            """, to: file)
        let r = try MPIRunner.run(ranks: 2, ["run", file])
        #expect(r.status == 1)
        let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix(file) }
        // Printed once (by rank 0), naming the file and the key path.
        #expect(lines == ["\(file): stages.s.treshold: unknown key (did you mean 'threshold'?); known keys: name, type, ranks, inputs, threshold, file"],
                "\(r.stderr)")
        // The same file planned for more ranks shows the rank problem once the key is fixed.
        try write("""
            {"pipeline": "bad", "stages": [
               {"name": "read", "type": "cxi-frames", "ranks": 2, "path": "x.cxi"},
               {"name": "s", "type": "frame-statistics", "ranks": "rest", "inputs": {"frames": "read.frames"}}]}
            """, to: file)
        let v = try MPIRunner.run(ranks: nil, ["validate", file, "--ranks", "2"])
        #expect(v.status == 1 && v.stderr.contains("stages.s.ranks: \"rest\" is empty: the counted stages take all 2 ranks"), "\(v.stderr)")
        let seven = try MPIRunner.run(ranks: nil, ["validate", file, "--ranks", "7"])
        #expect(seven.status == 0 && seven.stdout.contains("s      frame-statistics  2-6\n"), "\(seven.stdout)")
    }

    /// Every pipeline shipped in pipelines/ validates and plans on 1 to 8 ranks.
    @Test func theShippedPipelinesValidate() throws {
        let dir = SlurmJobTests.root + "/pipelines"
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".json") }
        #expect(!files.isEmpty)
        for f in files {
            for ranks in [2, 8] {
                let r = try MPIRunner.run(ranks: nil, ["validate", "\(dir)/\(f)", "--ranks", "\(ranks)"])
                #expect(r.status == 0, "\(f) on \(ranks) ranks: \(r.stderr)")
            }
        }
    }

    /// The shipped offline pipeline (raw2cxi then recon, as stages on all
    /// ranks), with single keys overridden on the command line, writes what
    /// the two commands write.
    @Test func theShippedOfflinePipelineEqualsTheCommands() throws {
        let out = temporary("offline")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let raw = RawToCXITests.rawScan
        let pipeline = SlurmJobTests.root + "/pipelines/offline.json"
        let r = try MPIRunner.run(ranks: 2, ["run", pipeline, "--set", "stages.clean.input=\(raw)", "--set", "output.directory=\(out)",
                                             "--set", "stages.clean.probe_defocus=15e-6", "--set", "stages.solve.iterations=6",
                                             "--set", "stages.solve.fft_planning=estimate"])
        try #require(r.status == 0, "\(r.stdout)\n\(r.stderr)")

        let clean = out + "/cmd-clean.cxi", recon = out + "/cmd-recon.cxi"
        let a = try MPIRunner.run(ranks: 2, ["raw2cxi", raw, "-o", clean, "--probe-defocus", "15e-6", "--quiet"])
        try #require(a.status == 0, "\(a.stderr)")
        let b = try MPIRunner.run(ranks: 2, ["recon", clean, "-o", recon, "--iterations", "6", "--fft-planning", "estimate", "--quiet"])
        try #require(b.status == 0, "\(b.stderr)")
        func read<T: HDF5Element>(_ path: String, _ dataset: String, _: T.Type) throws -> [T] {
            let f = try HDF5File(path: path, mode: .readOnly)
            defer { try? f.close() }
            return try f.read(dataset, as: T.self)
        }
        // The cleaner's FFT plans are measured per process, so two runs of the
        // same command differ by rounding (about 1e-4 photons): so do these.
        let frames = try read(out + "/clean.cxi", CXIPaths.data, Float.self), expected = try read(clean, CXIPaths.data, Float.self)
        try #require(frames.count == expected.count)
        #expect((zip(frames, expected).map { abs($0 - $1) }.max() ?? .infinity) < 1e-3)
        func relative(_ a: [Complex<Float>], _ b: [Complex<Float>]) -> Double {
            let difference = zip(a, b).reduce(0.0) { $0 + Double(($1.0 - $1.1).lengthSquared) }
            return (difference / b.reduce(0.0) { $0 + Double($1.lengthSquared) }).squareRoot()
        }
        #expect(relative(try read(out + "/recon.cxi", CXIPaths.image, Complex<Float>.self), try read(recon, CXIPaths.image, Complex<Float>.self)) < 1e-3)
        #expect(relative(try read(out + "/recon.cxi", CXIPaths.illumination, Complex<Float>.self),
                         try read(recon, CXIPaths.illumination, Complex<Float>.self)) < 1e-3)
    }

    /// `raw2cxi --pipeline FILE` takes its settings from the file's raw2cxi
    /// stage, an option given overrides one key, and the shipped recon
    /// pipeline runs alone on the scan set as its input.
    @Test func theCommandsTakeTheirSettingsFromAPipelineFile() throws {
        let out = temporary("settings"), file = temporary("mine") + ".json"
        defer { try? FileManager.default.removeItem(atPath: out); try? FileManager.default.removeItem(atPath: file) }
        try write("""
            {"pipeline": "mine", "output": {"directory": "\(out)"},
             "stages": [{"name": "c", "type": "raw2cxi", "input": "unused.cxi", "output": "mine.cxi", "output_size": 32, "probe_defocus": 15e-6}]}
            """, to: file)
        func frames(_ path: String) throws -> [Int] { try HDF5File(path: path, mode: .readOnly).openDataset(CXIPaths.data).shape }
        let a = try MPIRunner.run(ranks: 2, ["raw2cxi", RawToCXITests.rawScan, "--pipeline", file, "--quiet"])
        try #require(a.status == 0, "\(a.stderr)")
        let shape = try frames(out + "/mine.cxi")
        #expect(shape == [60, 32, 32], "\(shape)")
        let b = try MPIRunner.run(ranks: 2, ["raw2cxi", RawToCXITests.rawScan, "--pipeline", file, "--output-size", "16", "-o", out + "/16.cxi", "--quiet"])
        try #require(b.status == 0, "\(b.stderr)")
        #expect(try frames(out + "/16.cxi") == [60, 16, 16])

        let r = try MPIRunner.run(ranks: 2, ["run", "recon", "--set", "stages.solve.input=\(out)/mine.cxi", "--set", "output.directory=\(out)",
                                             "--set", "stages.solve.iterations=3"])
        try #require(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let errors = try HDF5File(path: out + "/recon.cxi", mode: .readOnly).read("/entry_1/image_1/process_1/ns_fourier_error", as: Double.self)
        #expect(errors.count == 3 && errors.allSatisfy(\.isFinite), "\(errors)")
    }

    /// raw2cxi as per-frame stages: one rank reading, the others cleaning
    /// (darks merged and the centre found when those inputs end), and the
    /// same stages sharing every rank: both write what `raw2cxi` writes.
    @Test func perFrameCleaningStagesEqualRawToCXI() throws {
        let out = temporary("frames"), shared = temporary("shared") + ".json"
        defer { try? FileManager.default.removeItem(atPath: out); try? FileManager.default.removeItem(atPath: shared) }
        let raw = RawToCXITests.rawScan
        let reference = out + "/reference.cxi"
        let a = try MPIRunner.run(ranks: 2, ["raw2cxi", raw, "-o", reference, "--probe-defocus", "15e-6", "--quiet"])
        try #require(a.status == 0, "\(a.stderr)")
        func read<T: HDF5Element>(_ path: String, _ dataset: String, _: T.Type) throws -> [T] {
            let f = try HDF5File(path: path, mode: .readOnly)
            defer { try? f.close() }
            return try f.read(dataset, as: T.self)
        }
        let frames = try read(reference, CXIPaths.data, Float.self), mask = try read(reference, CXIPaths.mask, UInt32.self)
        let centre = try read(reference, CXIPaths.scanImages + "/diffraction_centre", Double.self)
        func check(_ path: String, _ label: String) throws {
            let f = try read(path, CXIPaths.data, Float.self)
            try #require(f.count == frames.count, "\(label)")
            // Dark sums associate differently over the ranks: float rounding only.
            #expect((zip(f, frames).map { abs($0 - $1) }.max() ?? .infinity) < 1e-3, "\(label)")
            #expect(try read(path, CXIPaths.mask, UInt32.self) == mask, "\(label)")
            #expect(zip(try read(path, CXIPaths.scanImages + "/diffraction_centre", Double.self), centre).allSatisfy { abs($0 - $1) < 1e-4 }, "\(label)")
            let probe = try read(path, CXIPaths.illumination, Complex<Float>.self)
            let expected = try read(reference, CXIPaths.illumination, Complex<Float>.self)
            let difference = zip(probe, expected).reduce(0.0) { $0 + Double(($1.0 - $1.1).lengthSquared) }
            #expect(probe.count == expected.count && difference <= 1e-6 * expected.reduce(0.0) { $0 + Double($1.lengthSquared) }, "\(label)")
        }

        // 1 MiB in flight: the reading rank waits for the cleaning ranks (each frame is 96 KiB).
        let r = try MPIRunner.run(ranks: 3, ["run", "raw2cxi-frames", "--counts", "--max-in-flight-mb", "1", "--set", "stages.read.input=\(raw)",
                                             "--set", "output.directory=\(out)", "--set", "stages.clean.probe_defocus=15e-6"])
        try #require(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        // 20 darks, 8 centring frames and 60 frames read on rank 0; each cleaning rank took half.
        #expect(r.stdout.contains("rank 0: read in 0 out 89"), "\(r.stdout)")
        #expect(r.stdout.contains("rank 1: clean in ") && r.stdout.contains(" out 31, statistics in 30 out 30"), "\(r.stdout)")
        try check(out + "/clean.cxi", "read on 1 rank, clean on 2")
        let text = try String(contentsOfFile: out + "/statistics.csv", encoding: .utf8)
        let photons = Double(text.split(separator: "\n")[1].split(separator: ",")[1]) ?? 0
        #expect(abs(photons - frames.reduce(0.0) { $0 + Double($1) }) < 1e-3 * photons, "\(text)")

        try write("""
            {"pipeline": "shared", "output": {"directory": "\(out)"},
             "stages": [
               {"name": "read", "type": "raw-frames", "ranks": "all", "input": "\(raw)"},
               {"name": "clean", "type": "clean-frames", "ranks": "all", "output": "shared.cxi", "probe_defocus": 15e-6,
                "inputs": {"scan": "read.scan", "darks": "read.darks", "centring": "read.centring", "frames": "read.frames"}}]}
            """, to: shared)
        let s = try MPIRunner.run(ranks: 2, ["run", shared])
        try #require(s.status == 0, "\(s.stdout)\n\(s.stderr)")
        try check(out + "/shared.cxi", "read and clean sharing 2 ranks")
    }
}
