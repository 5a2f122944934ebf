import CXI
import Foundation
import Numerics
import Recon
import Simulator
import SwiftHDF5
import Testing

/// raw2cxi under mpirun: any rank count gives the single-rank result, the
/// mask is exactly the injected defects, and a reconstruction from raw
/// frames through preprocessing is as good as one from the clean frames.
@Suite(.serialized) struct RawToCXITests {
    static func config(raw: Bool) -> SimulationConfig {
        var config = SimulationConfig.standard
        config.geometry.frameSize = 64
        config.geometry.detectorPixelSize = 120e-6
        config.zonePlate.defocus = 15e-6
        config.scan = Scan(pattern: .spiral(points: 60), step: 200e-9, jitter: 0.1, seed: 4)
        config.photonsPerFrame = 1e6
        if raw {
            // Hot, dead pixels, offsets, drift, interference, dark current; no
            // noisy channel here, whose loss of a sixteenth of each pattern
            // is information no preprocessing recovers (the unit tests check
            // it is masked; BENCHMARKS.md has a full-size run with it).
            var model = DetectorModel()
            model.noisyChannel = nil
            config.detector = model
            config.darkFrames = 20
        }
        return config
    }

    static let rawScan: String = {
        let path = NSTemporaryDirectory() + "ns-raw-\(UUID().uuidString).cxi"
        _ = try! SimulatedScanWriter.write(try! Simulation(config(raw: true)), to: path)
        return path
    }()

    static let cleanScan: String = {
        let path = NSTemporaryDirectory() + "ns-clean-\(UUID().uuidString).cxi"
        _ = try! SimulatedScanWriter.write(try! Simulation(config(raw: false)), to: path)
        return path
    }()

    func preprocess(ranks: Int, _ extra: [String] = []) throws -> (frames: [Float], mask: [UInt32], centre: [Double], path: String) {
        let out = NSTemporaryDirectory() + "ns-raw2cxi-\(ranks)-\(UUID().uuidString).cxi"
        let run = try MPIRunner.run(ranks: ranks, ["raw2cxi", Self.rawScan, "-o", out, "--probe-defocus", "15e-6"] + extra)
        try #require(run.status == 0, "\(ranks) ranks: \(run.stderr)")
        #expect(run.stdout.contains("60 frames (20 darks) -> "))
        // The clean scan keeps the optics the raw one records, and its probe estimate comes from them.
        #expect(!run.stderr.contains("optics"), "\(run.stderr)")
        let optics = try CXIReader(path: out).scan.optics, recorded = try CXIReader(path: Self.rawScan).scan.optics
        #expect(optics != nil && optics == recorded)
        let f = try HDF5File(path: out, mode: .readOnly)
        return (try f.read(CXIPaths.data, as: Float.self), try f.read(CXIPaths.mask, as: UInt32.self),
                try f.read(CXIPaths.scanImages + "/diffraction_centre", as: Double.self), out)
    }

    @Test func anyRankCountGivesTheSingleRankResult() throws {
        let one = try preprocess(ranks: 1)
        defer { try? FileManager.default.removeItem(atPath: one.path) }
        let truthMask = try HDF5File(path: Self.rawScan, mode: .readOnly).read(CXIPaths.truth + "/detector/mask", as: UInt32.self)
        #expect(zip(one.mask, truthMask).allSatisfy { ($0 != 0) == ($1 != 0) }, "mask differs from the injected defects")
        for ranks in [2, 3] {
            let many = try preprocess(ranks: ranks)
            defer { try? FileManager.default.removeItem(atPath: many.path) }
            #expect(many.mask == one.mask)
            #expect(zip(many.centre, one.centre).allSatisfy { abs($0 - $1) < 1e-4 }, "\(many.centre) vs \(one.centre)")
            // Dark sums associate differently over ranks: float rounding only.
            let worst = zip(many.frames, one.frames).map { abs($0 - $1) }.max() ?? 0
            #expect(worst < 1e-3, "\(ranks) ranks: largest difference \(worst) photons")
        }
    }

    @Test func reconstructionFromRawFramesMatchesCleanFrames() throws {
        let pre = try preprocess(ranks: 2)
        defer { try? FileManager.default.removeItem(atPath: pre.path) }
        func nrmse(_ scan: String) throws -> Double {
            let out = NSTemporaryDirectory() + "ns-recon-raw-\(UUID().uuidString).cxi"
            defer { try? FileManager.default.removeItem(atPath: out) }
            let run = try MPIRunner.run(ranks: 2, ["recon", scan, "-o", out, "--ignore-file-probe", "--probe-defocus", "15e-6",
                                                   "--print-every", "1000"])
            try #require(run.status == 0, "\(run.stderr)")
            let line = try #require(run.stdout.split(separator: "\n").first { $0.contains("against the truth") })
            return try #require(Double(line.split(separator: " ")[6]))
        }
        let fromRaw = try nrmse(pre.path), fromClean = try nrmse(Self.cleanScan)
        #expect(fromRaw <= 1.1 * fromClean, "raw \(fromRaw) vs clean \(fromClean)")
        #expect(fromClean < 0.2)
    }

    @Test func badInputStopsWithAClearMessage() throws {
        let notRaw = try MPIRunner.run(ranks: 2, ["raw2cxi", Self.cleanScan, "-o", "/tmp/never.cxi"], timeout: 60)
        #expect(notRaw.status != 0)
        #expect(notRaw.stderr.contains("not raw fast-CCD frames"))
        let centre = try MPIRunner.run(ranks: nil, ["raw2cxi", Self.rawScan, "--centre", "12"])
        #expect(centre.status != 0 && centre.stderr.contains("stages.clean.centre: must look like \"512.5,480\", got \"12\" (given as --centre)"))
        let sizes = try MPIRunner.run(ranks: nil, ["raw2cxi", Self.rawScan, "--crop", "32", "--output-size", "48"])
        #expect(sizes.status != 0 && sizes.stderr.contains("larger than the crop"))
        let gain = try MPIRunner.run(ranks: 1, ["raw2cxi", Self.rawScan, "-o", "/tmp/never.cxi", "--gain=-1"], timeout: 60)
        #expect(gain.status != 0 && gain.stderr.contains("stages.clean.gain: -1.0 is out of range 0.0...1000000.0 (given as --gain)"))
        let map = NSTemporaryDirectory() + "ns-beamstop-\(UUID().uuidString).h5"
        defer { try? FileManager.default.removeItem(atPath: map) }
        let file = try HDF5File(path: map, mode: .truncate)
        try file.write([Float](repeating: 1, count: 32 * 48), to: "/transmission", shape: [32, 48])
        try file.close()
        let beamstop = try MPIRunner.run(ranks: 2, ["raw2cxi", Self.rawScan, "-o", "/tmp/never.cxi", "--beamstop-map", map], timeout: 60)
        #expect(beamstop.status != 0)
        #expect(beamstop.stderr.contains("is 32x48; the detector image is 64x64"), "\(beamstop.stderr)")
    }

    /// Downsampling keeps the photons and records the coarser detector pitch.
    @Test func downsampledOutputKeepsPhotonsAndGeometry() throws {
        let full = try preprocess(ranks: 1)
        let half = try preprocess(ranks: 2, ["--output-size", "32"])
        defer { try? FileManager.default.removeItem(atPath: full.path); try? FileManager.default.removeItem(atPath: half.path) }
        let f = try HDF5File(path: half.path, mode: .readOnly)
        #expect(try f.openDataset(CXIPaths.data).shape == [60, 32, 32])
        #expect(abs(try f.readScalar(CXIPaths.xPixelSize, as: Double.self) - 240e-6) < 1e-12)
        let a = full.frames.reduce(0, +), b = half.frames.reduce(0, +)
        #expect(abs(a - b) / a < 0.03, "\(a) -> \(b) photons")
        #expect(try f.read(CXIPaths.scanImages + "/transmission", as: Double.self).count == 60)
    }
}
