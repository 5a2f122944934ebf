import CXI
import Foundation
import SwiftHDF5
import Testing

/// No run destroys data that exists: an output that is an input is
/// refused, and a kill, a full disk or an error leaves the file at the
/// target byte-identical, with no partial file under its name.
@Suite(.serialized) struct FileSafetyTests {
    func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "ns-safety-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    /// Names in `dir` other than the ones expected to stay.
    func leftovers(_ dir: String, besides kept: Set<String>) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { !kept.contains($0) }.sorted()
    }

    @Test func anOutputThatIsAnInputIsRefusedAndTheInputStays() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let scan = dir + "/scan.cxi", raw = dir + "/raw.cxi"
        try FileManager.default.copyItem(atPath: DistributedReconTests.scan, toPath: scan)
        try FileManager.default.copyItem(atPath: RawToCXITests.rawScan, toPath: raw)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.cxi", withDestinationPath: scan)
        let (scanBytes, rawBytes) = (try bytes(scan), try bytes(raw))

        // The same name, another spelling of it, a link to it, and on 2 ranks.
        for (ranks, output) in [(nil, scan), (nil, dir + "/./scan.cxi"), (2, dir + "/link.cxi")] as [(Int?, String)] {
            let run = try MPIRunner.run(ranks: ranks, ["recon", scan, "-o", output, "--iterations", "1"])
            #expect(run.status != 0)
            #expect(run.stderr.contains("the output is the same file as the scan"), "\(run.stderr)")
        }
        let checkpoint = try MPIRunner.run(ranks: nil, ["recon", scan, "-o", dir + "/r.cxi", "--checkpoint", scan, "--checkpoint-every", "1"])
        #expect(checkpoint.status != 0 && checkpoint.stderr.contains("--checkpoint is the same file as the scan"), "\(checkpoint.stderr)")
        let clean = try MPIRunner.run(ranks: 2, ["raw2cxi", raw, "-o", raw])
        #expect(clean.status != 0)
        #expect(clean.stderr.contains("the output is the same file as the raw scan"), "\(clean.stderr)")
        #expect(try bytes(scan) == scanBytes)
        #expect(try bytes(raw) == rawBytes)
        #expect(try leftovers(dir, besides: ["scan.cxi", "raw.cxi", "link.cxi"]).isEmpty)
    }

    /// A kill while `simulate` writes: the old file at the target is
    /// untouched and nothing but the temporary holds the partial data.
    @Test func aKillWhileWritingLeavesTheOldFileWhole() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let target = dir + "/scan.cxi"
        try FileManager.default.copyItem(atPath: DistributedReconTests.scan, toPath: target)
        let old = try bytes(target)
        let sim = try BackgroundProcess(MPIRunner.executable, ["simulate", "-o", target, "--scan", "spiral:2000", "--frame-size", "128"])
        // Kill once the new file is partly written.
        var partial: String?
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, sim.process.isRunning {
            if let p = try leftovers(dir, besides: ["scan.cxi"]).first,
               let size = try? FileManager.default.attributesOfItem(atPath: dir + "/" + p)[.size] as? Int, size > 1 << 20 {
                partial = p
                break
            }
            usleep(5_000)
        }
        try #require(partial != nil, "no partial file appeared: \(sim.output.string)")
        kill(sim.process.processIdentifier, SIGKILL)
        sim.finish()
        #expect(try bytes(target) == old, "the file at the target changed")
        #expect(partial!.hasPrefix("scan.cxi.") && partial!.contains(".partial-"), "\(partial!)")
        _ = try CXIReader(path: target)
    }

    /// A small file system, mounted for the test: the new reconstruction
    /// does not fit, the run fails, and the old result stays as it was; a
    /// checkpoint that does not fit is a warning and the run goes on.
    @Test func aFullDiskLeavesTheOldFileWholeAndACheckpointFailureIsAWarning() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let small = dir + "/small"
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        if let reason = try MPIRunner.mountSmallDisk(at: small, size: "256k") {
            // Nothing here can fill a disk safely then.
            print("FileSafetyTests: skipped the full-disk case: \(reason)")
            return
        }
        defer { _ = try? MPIRunner.execute("/bin/umount", [small]) }
        let target = small + "/recon.cxi"
        let old = Data(repeating: 0x4f, count: 200_000)
        try old.write(to: URL(fileURLWithPath: target))

        let run = try MPIRunner.run(ranks: nil, ["recon", DistributedReconTests.scan, "-o", target, "--iterations", "2", "--quiet"])
        #expect(run.status != 0, "a reconstruction larger than the disk was written? \(run.stdout)")
        #expect(try bytes(target) == old)
        #expect(try leftovers(small, besides: ["recon.cxi"]).isEmpty, "a partial file was left behind")

        // Checkpoints onto the full disk, the result elsewhere: the run completes.
        let output = dir + "/recon.cxi"
        let checkpointed = try MPIRunner.run(ranks: 2, ["recon", DistributedReconTests.scan, "-o", output, "--iterations", "4",
                                                        "--checkpoint", small + "/ckpt.h5", "--checkpoint-every", "2", "--quiet"])
        #expect(checkpointed.status == 0, "\(checkpointed.stderr)")
        #expect(checkpointed.stderr.contains("warning: no checkpoint after iteration 2"), "\(checkpointed.stderr)")
        #expect(checkpointed.stderr.contains("warning: no checkpoint after iteration 4"), "\(checkpointed.stderr)")
        let file = try HDF5File(path: output, mode: .readOnly)
        defer { try? file.close() }
        #expect(try file.read("/entry_1/image_1/process_1/ns_fourier_error", as: Double.self).count == 4)
        #expect(try bytes(target) == old)
        #expect(try leftovers(small, besides: ["recon.cxi"]).isEmpty)
    }
}
