import CXI
import Foundation
import Numerics
import Recon
import SwiftHDF5
import Testing

/// A reconstruction stopped and resumed, on another rank count, ends where
/// an uninterrupted one does; a signal checkpoints and stops it cleanly.
@Suite(.serialized) struct CheckpointTests {
    static var scan: String { DistributedReconTests.scan }

    func object(_ path: String) throws -> [Complex<Float>] {
        try HDF5File(path: path, mode: .readOnly).read(CXIPaths.image, as: Complex<Float>.self)
    }

    func temporary(_ name: String) -> String { NSTemporaryDirectory() + "ns-\(name)-\(UUID().uuidString).h5" }

    /// Also with probe modes: the exit waves of every mode and all modes are kept.
    @Test(arguments: [[String](), ["--probe-modes", "2"]])
    func resumingOnOtherRankCountsEqualsAnUninterruptedRun(modes: [String]) throws {
        // Estimated plans: measured ones may differ between processes and round differently.
        let common = ["--quiet", "--probe-start", "1", "--fft-planning", "estimate"] + modes
        let whole = temporary("whole"), half = temporary("half"), ck = temporary("ck"), resumed = temporary("resumed")
        defer { for p in [whole, half, ck, resumed] { try? FileManager.default.removeItem(atPath: p) } }
        let a = try MPIRunner.run(ranks: 2, ["recon", Self.scan, "-o", whole, "--iterations", "8"] + common)
        try #require(a.status == 0, "\(a.stderr)")
        let b = try MPIRunner.run(ranks: 2, ["recon", Self.scan, "-o", half, "--iterations", "4", "--checkpoint", ck,
                                             "--checkpoint-every", "4"] + common)
        try #require(b.status == 0, "\(b.stderr)")
        for ranks in [1, 3] {
            let c = try MPIRunner.run(ranks: ranks, ["recon", Self.scan, "-o", resumed, "--iterations", "8", "--resume", ck] + common)
            try #require(c.status == 0, "\(c.stderr)")
            #expect(DistributedReconTests.relative(try object(resumed), try object(whole)) < 1e-4, "\(ranks) ranks")
            let errors = try HDF5File(path: resumed, mode: .readOnly).read("/entry_1/image_1/process_1/ns_fourier_error", as: Double.self)
            #expect(errors.count == 8)
        }
        // A checkpoint of another scan is refused with both shapes named.
        let other = try MPIRunner.run(ranks: 1, ["recon", RawToCXITests.cleanScan, "-o", resumed, "--resume", ck], timeout: 60)
        #expect(other.status != 0 && other.stderr.contains("a checkpoint of 40 frames"), "\(other.stderr)")
    }

    /// A sequence resumed at a change of engine ends where the uninterrupted
    /// sequence does: the engine that takes over starts from the object and
    /// probe either way.
    @Test func resumingASequenceAtAChangeOfEngineEqualsAnUninterruptedRun() throws {
        let common = ["--quiet", "--probe-start", "1", "--fft-planning", "estimate"]
        let whole = temporary("seq-whole"), half = temporary("seq-half"), ck = temporary("seq-ck"), resumed = temporary("seq-resumed")
        defer { for p in [whole, half, ck, resumed] { try? FileManager.default.removeItem(atPath: p) } }
        let sequence = ["--engines", "dm:4,ml:3,raar:1"]
        let a = try MPIRunner.run(ranks: 2, ["recon", Self.scan, "-o", whole] + sequence + common)
        try #require(a.status == 0, "\(a.stderr)")
        let b = try MPIRunner.run(ranks: 2, ["recon", Self.scan, "-o", half, "--engines", "dm:4", "--checkpoint", ck,
                                             "--checkpoint-every", "4"] + common)
        try #require(b.status == 0, "\(b.stderr)")
        let c = try MPIRunner.run(ranks: 1, ["recon", Self.scan, "-o", resumed, "--resume", ck] + sequence + common)
        try #require(c.status == 0, "\(c.stderr)")
        #expect(DistributedReconTests.relative(try object(resumed), try object(whole)) < 1e-4)
        let errors = try HDF5File(path: resumed, mode: .readOnly).read("/entry_1/image_1/process_1/ns_fourier_error", as: Double.self)
        #expect(errors.count == 8)
    }

    /// Resumed in the middle of an engine after DM: ML's search goes on from
    /// the saved gradients, direction and probe scale; rPIE keeps nothing
    /// beyond the object and probe, and its batches depend on the scan
    /// alone. On the same ranks the result is the uninterrupted one bit for
    /// bit, on another rank count within the rounding of the sums' order.
    @Test(arguments: ["ml", "rpie"])
    func resumingInTheMiddleOfAnEngineEqualsAnUninterruptedRun(engine: String) throws {
        let common = ["--quiet", "--probe-start", "1", "--fft-planning", "estimate", "--engine-parameter", "minibatch=8"]
        let whole = temporary("\(engine)-whole"), half = temporary("\(engine)-half"), ck = temporary("\(engine)-ck")
        let resumed = temporary("\(engine)-resumed")
        defer { for p in [whole, half, ck, resumed] { try? FileManager.default.removeItem(atPath: p) } }
        let a = try MPIRunner.run(ranks: 2, ["recon", Self.scan, "-o", whole, "--engines", "dm:2,\(engine):6"] + common)
        try #require(a.status == 0, "\(a.stderr)")
        let b = try MPIRunner.run(ranks: 2, ["recon", Self.scan, "-o", half, "--engines", "dm:2,\(engine):3", "--checkpoint", ck,
                                             "--checkpoint-every", "5"] + common)
        try #require(b.status == 0, "\(b.stderr)")
        let saved = try HDF5File(path: ck, mode: .readOnly)
        #expect(try saved.readString("/checkpoint/engine") == engine)
        #expect(saved.exists("/checkpoint/ml_object_direction") == (engine == "ml") && !saved.exists("/checkpoint/exit_waves"))
        try saved.close()
        let expected = try object(whole)
        let errors = try HDF5File(path: whole, mode: .readOnly).read("/entry_1/image_1/process_1/ns_fourier_error", as: Double.self)
        for ranks in [2, 1] {
            let c = try MPIRunner.run(ranks: ranks, ["recon", Self.scan, "-o", resumed, "--engines", "dm:2,\(engine):6", "--resume", ck] + common)
            try #require(c.status == 0, "\(c.stderr)")
            let got = try HDF5File(path: resumed, mode: .readOnly).read("/entry_1/image_1/process_1/ns_fourier_error", as: Double.self)
            if ranks == 2 {
                #expect(try object(resumed) == expected)
                #expect(got == errors)
            } else {
                #expect(DistributedReconTests.relative(try object(resumed), expected) < 1e-4)
                #expect(got.count == errors.count)
            }
        }
    }

    static let h5py = (try? MPIRunner.execute("/usr/bin/python3", ["-c", "import h5py"]))?.status == 0

    /// A damaged or foreign checkpoint (a number that is an array, a history
    /// that claims two million iterations, a shape record of two values) is
    /// refused by the dataset's name before anything is sized from it.
    @Test(.enabled(if: Self.h5py, "needs Debian's python3-h5py (scripts/test.sh installs it)"))
    func aDamagedCheckpointIsRefusedByName() throws {
        let common = ["--quiet", "--fft-planning", "estimate", "--engines", "dm:2,ml:3"]
        let ck = temporary("damaged-ck"), damaged = temporary("damaged"), out = temporary("damaged-out")
        defer { for p in [ck, damaged, out] { try? FileManager.default.removeItem(atPath: p) } }
        let made = try MPIRunner.run(ranks: 2, ["recon", Self.scan, "-o", out, "--checkpoint", ck, "--checkpoint-every", "5"] + common)
        try #require(made.status == 0, "\(made.stderr)")
        let damages = [
            ("del g['ml_probe_scale']; g['ml_probe_scale'] = np.zeros(3)", "/checkpoint/ml_probe_scale is [3]"),
            ("del g['fourier_error']; g.create_dataset('fourier_error', shape=(2000000,), dtype='f8', chunks=(1000,))",
             "/checkpoint/fourier_error is [2000000]"),
            ("del g['shape']; g['shape'] = np.array([1, 2], dtype='i8')", "/checkpoint/shape is [2]"),
        ]
        for (change, message) in damages {
            try? FileManager.default.removeItem(atPath: damaged)
            try FileManager.default.copyItem(atPath: ck, toPath: damaged)
            let script = "import sys, h5py, numpy as np\nwith h5py.File(sys.argv[1], 'r+') as f:\n    g = f['checkpoint']; \(change)\n"
            let edit = try MPIRunner.execute("/usr/bin/python3", ["-c", script, damaged])
            try #require(edit.status == 0, "\(edit.stderr)")
            try? FileManager.default.removeItem(atPath: out)
            let run = try MPIRunner.run(ranks: 2, ["recon", Self.scan, "-o", out, "--resume", damaged] + common)
            #expect(run.status != 0 && run.stderr.contains(message), "\(message): \(run.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out), "no result from a refused checkpoint")
        }
    }

    /// SIGUSR1, which SLURM sends to the tasks before the time limit
    /// (`--signal=USR1@T`), here to one rank: the ranks agree to stop,
    /// checkpoint and exit with status 3.
    @Test func aSignalCheckpointsAndStops() throws {
        let ck = temporary("signal"), out = temporary("signal-out")
        defer { try? FileManager.default.removeItem(atPath: ck); try? FileManager.default.removeItem(atPath: out) }
        let launcher = try #require(MPIRunner.mpirun)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: launcher)
        process.arguments = ["-n", "2", MPIRunner.executable, "recon", Self.scan, "-o", out, "--iterations", "20000",
                             "--probe-defocus", "15e-6", "--checkpoint", ck, "--print-every", "1"]
        process.environment = MPIRunner.environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        let output = LockedData()
        pipe.fileHandleForReading.readabilityHandler = { output.append($0.availableData) }
        try process.run()
        // Wait for iterations to run, then signal one rank. The iteration
        // count bounds the run if the signal is never honoured.
        let deadline = Date().addingTimeInterval(120)
        while !output.string.contains("iter   20/") && Date() < deadline && process.isRunning { usleep(50_000) }
        // The ranks are whichever processes run ns-mpirun with this (unique)
        // checkpoint path: children of mpirun under OpenMPI, of a proxy under MPICH.
        let ranks = try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap { Int32($0) }.filter { pid in
            guard let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let args = raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return args.first.map { $0.hasSuffix("/ns-mpirun") } == true && args.contains(ck)
        }
        let rank = try #require(ranks.first, "no rank of the job found")
        kill(rank, SIGUSR1)
        ChildProcesses.await(process, timeout: max(1, deadline.timeIntervalSinceNow), what: "the signalled run")
        ChildProcesses.drain(pipe, into: output)
        #expect(ChildProcesses.status(process) == 3, "\(output.string.suffix(500))")
        #expect(output.string.contains("stopped by a signal"))
        let done = try HDF5File(path: ck, mode: .readOnly).read("/checkpoint/fourier_error", as: Double.self).count
        #expect(done >= 20 && done < 20000)
    }
}
