import Foundation
import Numerics
import SwiftHDF5
import Testing

/// Real multi-rank runs: the results are recomputed here from rank and size
/// alone, never taken from the program's own verdict.
@Suite(.serialized) struct MultiRankTests {
    static let rankCounts = [2, 3]

    @Test(arguments: rankCounts)
    func infoReportsEveryRankAndTheLinkedLibraries(ranks: Int) throws {
        let result = try MPIRunner.run(ranks: ranks, ["info", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = try result.jsonLines()
        #expect(lines.map { $0["rank"] as? Int } == (0..<ranks).map { $0 })
        #expect(lines.allSatisfy { $0["size"] as? Int == ranks })
        #expect(Set(lines.compactMap { $0["pid"] as? Int }).count == ranks)
        let versions = try #require(lines.first?["versions"] as? [String: Any])
        #expect((versions["mpi"] as? String)?.isEmpty == false)
        #expect((versions["fftw"] as? String)?.hasPrefix("fftw-3") == true)
        #expect(versions["hdf5"] as? String == HDF5Library.version)
        #expect(versions["hdf5Parallel"] as? Bool == true)
        #expect((versions["zmq"] as? String)?.hasPrefix("4.") == true)
    }

    struct Collectives: Decodable {
        var rank, size, maxMessageBytes: Int
        var allreduceFloat: [Float]
        var allreduceDouble: [Double]
        var allreduceComplex: [[Float]]
        var allreduceInt: [Int]
        var allreduceMax: Int
        var broadcast: [Double]
        var ringReceived: [Int]
        var ringSource: Int
        var nonBlockingReceived: [Float]
        var persistentReceived: [[Float]]
        var scattered, gathered, gatheredCounts: [Int]
        var splitRank, splitSize: Int
    }

    /// 64-byte pieces force every transfer through the chunked paths
    /// (the same code that keeps messages over 2 GiB from overflowing).
    @Test(arguments: rankCounts, [1 << 30, 64])
    func collectivesGiveExactResults(ranks: Int, maxMessageBytes: Int) throws {
        let length = 257
        let result = try MPIRunner.run(ranks: ranks, ["check", "collectives", "--length", "\(length)",
                                                      "--max-message-bytes", "\(maxMessageBytes)"])
        #expect(result.status == 0, "\(result.stderr)")
        let reports = try result.decodeLines(Collectives.self)
        try #require(reports.count == ranks)
        let rankSum = ranks * (ranks + 1) / 2
        for (r, rep) in reports.enumerated() {
            #expect(rep.rank == r && rep.size == ranks && rep.maxMessageBytes == maxMessageBytes)
            for i in 0..<length {
                #expect(rep.allreduceFloat[i] == Float(rankSum * (i + 1)))
                #expect(rep.allreduceDouble[i] == Double(rankSum * (i + 1)) / 4)
                #expect(rep.allreduceComplex[i] == [Float(rankSum * (i + 1)), -Float(ranks * (ranks - 1) / 2)])
                #expect(rep.allreduceInt[i] == rankSum * (i + 1) * 1_000_000_000)
                #expect(rep.broadcast[i] == Double(i) + 0.25)
            }
            #expect(rep.allreduceMax == ranks - 1)
            let previous = (r + ranks - 1) % ranks
            #expect(rep.ringSource == previous)
            #expect(rep.ringReceived == (0..<(length + previous)).map { previous * 100_000 + $0 })
            #expect(rep.nonBlockingReceived == (0..<length).map { Float(previous) + Float($0) / 1024 })
            for run in 0..<3 {
                let sent: [Float] = (0..<length).map { Float(previous * 1000 + run) + Float($0) / 1024 }
                #expect(rep.persistentReceived.count == 3 && rep.persistentReceived[run] == sent, "run \(run)")
            }
            let before = (0..<r).map { $0 + 1 }.reduce(0, +)
            #expect(rep.scattered == (before..<(before + r + 1)).map { $0 * 3 })
            if r == 0 {
                #expect(rep.gatheredCounts == (0..<ranks).map { $0 + 2 })
                #expect(rep.gathered == (0..<ranks).flatMap { q in (0..<(q + 2)).map { q * 10 + $0 } })
            } else {
                #expect(rep.gathered.isEmpty && rep.gatheredCounts.isEmpty)
            }
            let sameParity = (0..<ranks).filter { $0 % 2 == r % 2 }
            #expect(rep.splitSize == sameParity.count)
            #expect(rep.splitRank == sameParity.reversed().firstIndex(of: r))
        }
    }

    struct Halo: Decodable {
        var rank: Int
        var dims, coords: [Int]
        var blockHeight, blockWidth, halo: Int
        var values: [Double]
    }

    /// Each halo cell must hold the neighbour's owned value, corners included;
    /// cells past the edge of the global array stay -1.
    @Test(arguments: [2, 3, 4])
    func haloExchangeOnCartesianGrid(ranks: Int) throws {
        let result = try MPIRunner.run(ranks: ranks, ["check", "halo", "--block-height", "4", "--block-width", "5", "--halo", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        let reports = try result.decodeLines(Halo.self)
        try #require(reports.count == ranks)
        let dims = reports[0].dims
        #expect(dims.reduce(1, *) == ranks)
        #expect(Set(reports.map { $0.coords }).count == ranks)
        for rep in reports {
            let h = rep.halo, bh = rep.blockHeight, bw = rep.blockWidth
            let globalHeight = dims[0] * bh, globalWidth = dims[1] * bw
            let width = bw + 2 * h
            var checked = 0
            for ly in 0..<(bh + 2 * h) {
                for lx in 0..<width {
                    let gy = rep.coords[0] * bh + ly - h, gx = rep.coords[1] * bw + lx - h
                    let inside = gy >= 0 && gy < globalHeight && gx >= 0 && gx < globalWidth
                    let expected = inside ? Double(gy * 1000 + gx) : -1
                    #expect(rep.values[ly * width + lx] == expected, "rank \(rep.rank) cell (\(ly), \(lx))")
                    checked += 1
                }
            }
            #expect(checked == (bh + 2 * h) * (bw + 2 * h))
        }
    }

    /// Each rank writes its own rows collectively (one rank writes none);
    /// the file read back serially holds exactly the expected values.
    @Test(arguments: rankCounts)
    func collectiveParallelHDF5Write(ranks: Int) throws {
        let path = NSTemporaryDirectory() + "ns-phdf5-\(UUID().uuidString).h5"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try MPIRunner.run(ranks: ranks, ["check", "hdf5", "--output", path])
        #expect(result.status == 0, "\(result.stderr)")
        let reports = try result.jsonLines()
        #expect(reports.map { $0["rows"] as? Int } == (0..<ranks).map { $0 == 0 ? 4 : ($0 == ranks - 1 ? 0 : 3) })

        let file = try HDF5File(path: path, mode: .readOnly)
        let rows = 3 * ranks - 2, cols = 6
        #expect(try file.openDataset("/check/real").shape == [rows, cols])
        let real = try file.read("/check/real", as: Float.self)
        #expect(real == (0..<(rows * cols)).map { Float($0) + 0.5 })
        let complex = try file.read("/check/complex", as: Complex<Float>.self)
        #expect(complex == (0..<(rows * cols)).map { Complex(Float($0) + 0.5, -Float($0 / cols)) })
        #expect(try file.openDataset("/check/frames").shape == [ranks, 2, cols])
        let frames = try file.read("/check/frames", as: UInt16.self)
        #expect(frames == (0..<ranks).flatMap { r in (0..<(2 * cols)).map { UInt16(r * 100 + $0) } })
        #expect(try file.readString("/check/title") == "nanosurveyor parallel HDF5 check")
        #expect(try file.readScalar("/check/ranks", as: Int64.self) == Int64(ranks))
        #expect(try file.openDataset("/check/real").stringAttribute("units") == "counts")
        #expect(try file.softLinkTarget("/check/link_to_real") == "/check/real")
        #expect(try file.read("/check/link_to_real", as: Float.self) == real)
    }

    /// The strong-scaling reference is every rank alone in turn (cores of a
    /// shared machine differ), and the efficiency is taken against their mean.
    @Test(arguments: rankCounts)
    func benchReconTimesEachRankAlone(ranks: Int) throws {
        struct Row: Decodable {
            var ranks, ranksTimedAlone: Int
            var secondsPerIteration, oneRankSecondsPerIteration: Double
            var oneRankFastestSecondsPerIteration, oneRankSlowestSecondsPerIteration: Double
            var efficiency, fftNormalizedEfficiency, fftEfficiency: Double
        }
        let result = try MPIRunner.run(ranks: ranks, ["bench", "recon", "--cases", "16x64", "--iterations", "\(ranks)",
                                                      "--fft-planning", "estimate", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let line = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("[") })
        let rows = try JSONDecoder().decode([Row].self, from: Data(line.utf8))
        let row = try #require(rows.first)
        #expect(row.ranks == ranks && row.ranksTimedAlone == ranks)
        #expect(row.oneRankFastestSecondsPerIteration > 0)
        #expect(row.oneRankFastestSecondsPerIteration <= row.oneRankSecondsPerIteration)
        #expect(row.oneRankSecondsPerIteration <= row.oneRankSlowestSecondsPerIteration)
        let expected = row.oneRankSecondsPerIteration / (Double(ranks) * row.secondsPerIteration)
        #expect(abs(row.efficiency - expected) <= 1e-12 * expected)
        #expect(row.fftNormalizedEfficiency > 0 && row.fftNormalizedEfficiency.isFinite)
        // Efficiency = FFT-only efficiency x FFT-normalized efficiency, by definition.
        #expect(abs(row.efficiency - row.fftEfficiency * row.fftNormalizedEfficiency) <= 1e-9 * row.efficiency)
    }

    @Test func badOptionStopsBeforeMPIWithItsName() throws {
        let result = try MPIRunner.run(ranks: 2, ["check", "collectives", "--length", "0"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--length must be positive"))
    }

    /// Without a launcher there is no rank 0 to defer to: the one process prints.
    @Test func usageErrorsAndHelpPrintWithoutALauncher() throws {
        let bad = try MPIRunner.run(ranks: nil, ["simulate", "--no-such-option"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--no-such-option"))
        let help = try MPIRunner.run(ranks: nil, ["recon", "--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("--subpixel"))
    }

    /// Under mpirun only rank 0 prints a usage error, once.
    @Test func usageErrorPrintsOnceUnderMPI() throws {
        let bad = try MPIRunner.run(ranks: 2, ["simulate", "--no-such-option"])
        #expect(bad.status != 0)
        #expect(bad.stderr.components(separatedBy: "--no-such-option").count - 1 == 1, "\(bad.stderr)")
    }

    /// The binary started by the other MPI family's launcher: each copy sees
    /// a world of one, and must stop (saying what to pass) rather than run
    /// alone as rank 0 beside the others.
    @Test func aLauncherThatTheLibraryDoesNotSpeakToStopsTheJob() throws {
        let ours = URL(fileURLWithPath: try #require(MPIRunner.mpirun)).resolvingSymlinksInPath().lastPathComponent
        let other = ours.contains("mpich") || ours.contains("hydra") ? "/usr/bin/mpirun.openmpi" : "/usr/bin/mpirun.mpich"
        guard FileManager.default.isExecutableFile(atPath: other) else {
            print("MultiRankTests: skipped the launcher mismatch: \(other) is not installed (scripts/test-mpich.sh installs MPICH)")
            return
        }
        let result = try MPIRunner.execute(other, ["-n", "2", MPIRunner.executable, "info"], timeout: 60)
        #expect(result.status != 0)
        #expect(result.stderr.components(separatedBy: "but MPI sees a world of 1").count - 1 == 2, "\(result.stdout)\n\(result.stderr)")
        #expect(!result.stdout.contains("\"rank\""), "a copy ran as rank 0: \(result.stdout)")
    }

    @Test func unwritableOutputFailsEveryRankCleanly() throws {
        let result = try MPIRunner.run(ranks: 2, ["check", "hdf5", "--output", "/nonexistent-dir/x.h5"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("/nonexistent-dir/x.h5"))
        #expect(result.stderr.contains("H5Fcreate"))
    }

    /// What a command prints instead of working comes from rank 0 only, as usage and errors do.
    @Test(arguments: ["recon", "raw2cxi", "stream"])
    func theParameterTableIsPrintedOnce(command: String) throws {
        let args = command == "stream" ? [command, "--show-parameters"] : [command, "scan.cxi", "--show-parameters"]
        let r = try MPIRunner.run(ranks: 3, args)
        #expect(r.status == 0, "\(r.stderr)")
        let headers = r.stdout.split(separator: "\n").filter { $0.contains(": stage '") }
        #expect(headers.count == 1, "\(r.stdout)")
    }
}
