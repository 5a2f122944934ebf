import CXI
import Foundation
import Recon
import Testing

/// `simulate` under mpirun: frames split across ranks and written
/// collectively must give the same file as one rank, frame for frame.
@Suite(.serialized) struct ParallelSimulationTests {
    static let arguments = ["--scan", "spiral:13", "--frame-size", "64", "--detector-pixel", "120e-6",
                            "--defocus", "15e-6", "--step", "200e-9", "--batch", "2", "--quiet"]

    func simulate(ranks: Int, extra: [String] = []) throws -> (String, CXIReader) {
        let path = NSTemporaryDirectory() + "ns-psim-\(ranks)-\(UUID().uuidString).cxi"
        let result = try MPIRunner.run(ranks: ranks, ["simulate", "-o", path] + Self.arguments + extra)
        try #require(result.status == 0, "\(result.stderr)")
        return (path, try CXIReader(path: path))
    }

    @Test func anyRankCountWritesTheSameScan() throws {
        let (p1, one) = try simulate(ranks: 1)
        defer { try? FileManager.default.removeItem(atPath: p1) }
        let reference = try one.readFrames(first: 0, count: 13)
        let truth = try one.truthIntensities(first: 0, count: 13)
        #expect(reference.reduce(0, +) > 13 * 1e5 * 0.5)  // real photons, not an empty file
        for ranks in [2, 3] {
            let (path, other) = try simulate(ranks: ranks)
            defer { try? FileManager.default.removeItem(atPath: path) }
            #expect(try other.readFrames(first: 0, count: 13) == reference, "\(ranks) ranks")
            #expect(try other.truthIntensities(first: 0, count: 13) == truth)
            #expect(try other.truthObject() == one.truthObject())
            #expect(zip(other.scan.positions, one.scan.positions).allSatisfy { $0.x == $1.x && $0.y == $1.y })
        }
    }

    @Test func rawFramesAndDarksOnTwoRanks() throws {
        let (p1, one) = try simulate(ranks: 1, extra: ["--raw", "--dark-frames", "5", "--channels", "8"])
        defer { try? FileManager.default.removeItem(atPath: p1) }
        let (p2, two) = try simulate(ranks: 2, extra: ["--raw", "--dark-frames", "5", "--channels", "8"])
        defer { try? FileManager.default.removeItem(atPath: p2) }
        #expect(two.scan.darkFrames == 5 && two.scan.readout?.channels == 8)
        #expect(try two.readFrames(first: 0, count: 13) == one.readFrames(first: 0, count: 13))
        #expect(try two.readDarks(first: 0, count: 5) == one.readDarks(first: 0, count: 5))
        // Darks hold offsets (about 1000 ADU), not photons.
        let darks = try two.readDarks(first: 0, count: 5)
        let mean = darks.reduce(0, +) / Float(darks.count)
        #expect(mean > 700 && mean < 1300)
    }

    @Test func badSimulationSettingsStopWithOneMessage() throws {
        let result = try MPIRunner.run(ranks: 2, ["simulate", "-o", "/tmp/never.cxi", "--scan", "spiral:0"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("scan 'spiral:0'"))
        let coarse = try MPIRunner.run(ranks: 2, ["simulate", "-o", "/tmp/never.cxi", "--detector-pixel", "5e-6"])
        #expect(coarse.status != 0)
        #expect(coarse.stderr.contains("too coarse"))
    }

    @Test func inspectDescribesTheFile() throws {
        let (path, _) = try simulate(ranks: 2)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try MPIRunner.run(ranks: 1, ["inspect", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("frames:      13 x 64 x 64 float32"))
        #expect(result.stdout.contains("energy:      800.0 eV"))
        #expect(result.stdout.contains("simulation truth: yes"))
        #expect(result.stdout.split(separator: "\n").filter { $0.hasPrefix("  |") }.count == 20)  // the scan drawing
        let bad = try MPIRunner.run(ranks: 1, ["inspect", "/nonexistent.cxi"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("/nonexistent.cxi"))
        #expect(bad.stderr.contains("no such file"))
    }
}
