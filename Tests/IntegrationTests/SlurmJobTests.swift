import CXI
import Foundation
import Numerics
import SwiftHDF5
import Testing

/// The job scripts in jobs/, submitted with sbatch to a real single-node
/// SLURM (slurmctld, slurmd and munge from Debian's packages) brought up on
/// 127.0.0.1 for the test and stopped by PID afterwards.
@Suite(.serialized) struct SlurmJobTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// Installed and allowed: slurmd starts jobs as their users, so it needs
    /// root, and it will not start without a cgroup file system (many
    /// containers have none).
    static var slurmAvailable: Bool {
        getuid() == 0 && cgroupsMounted && ["slurmctld", "slurmd", "sbatch", "munged"].allSatisfy { tool in
            ["/usr/sbin", "/usr/bin"].contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }
        }
    }

    static var cgroupsMounted: Bool {
        let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        return mounts.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ")
            return fields.count > 2 && (fields[2] == "cgroup" || fields[2] == "cgroup2")
        }
    }

    /// A SLURM for one test; `stop` ends every daemon it started.
    final class Cluster {
        let directory: String
        var environment: [String: String]

        init() throws {
            directory = NSTemporaryDirectory() + "ns-slurm-\(UUID().uuidString.prefix(8))"
            let r = try MPIRunner.execute("/bin/bash", ["\(SlurmJobTests.root)/scripts/slurm-local.sh", "start", directory],
                                          timeout: 60)
            try #require(r.status == 0, "the local SLURM did not start: \(r.stdout) \(r.stderr)")
            environment = MPIRunner.environment
            environment["SLURM_CONF"] = directory + "/slurm.conf"
            environment["NS_BIN"] = MPIRunner.executable
            // This node's slurmd has no task plugin to bind with.
            environment["NS_CPU_BIND"] = "none"
        }

        func stop() {
            let r = try? MPIRunner.execute("/bin/bash", ["\(SlurmJobTests.root)/scripts/slurm-local.sh", "stop", directory],
                                           timeout: 30)
            #expect(r?.status == 0, "stopping the local SLURM: \(r?.stderr ?? "")")
            try? FileManager.default.removeItem(atPath: directory)
        }

        func command(_ tool: String, _ arguments: [String], extra: [String: String] = [:]) throws -> MPIRunner.Result {
            try MPIRunner.execute("/usr/bin/\(tool)", arguments, environment: environment.merging(extra) { $1 }, timeout: 60)
        }

        /// sbatch; returns the job ID.
        func submit(_ arguments: [String], extra: [String: String] = [:]) throws -> String {
            let r = try command("sbatch", ["--parsable"] + arguments, extra: extra)
            try #require(r.status == 0, "sbatch \(arguments): \(r.stderr)")
            return String(r.stdout.split(separator: ";")[0]).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// The fields of `scontrol show job` for each job (one per array task).
        func jobs(_ id: String) throws -> [[String: String]] {
            let r = try command("scontrol", ["show", "job", "-o", id])
            guard r.status == 0 else { return [] }
            return r.stdout.split(separator: "\n").map { line in
                var fields: [String: String] = [:]
                for token in line.split(separator: " ") {
                    let parts = token.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                    if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
                }
                return fields
            }
        }

        func state(_ id: String) throws -> String { try jobs(id).first?["JobState"] ?? "UNKNOWN" }

        /// Polls until `done` holds, or fails the test after `timeout` seconds.
        func wait(_ what: String, timeout: TimeInterval = 120, until done: () throws -> Bool) throws {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if try done() { return }
                usleep(200_000)
            }
            Issue.record("timed out after \(Int(timeout)) s waiting for \(what)")
            throw CancellationError()
        }

        func waitForEnd(_ id: String, timeout: TimeInterval = 120) throws -> String {
            var last = ""
            try wait("job \(id) to end", timeout: timeout) {
                last = try state(id)
                return ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"].contains(last)
            }
            return last
        }
    }

    static func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    func object(_ path: String) throws -> [Complex<Float>] {
        try HDF5File(path: path, mode: .readOnly).read(CXIPaths.image, as: Complex<Float>.self)
    }

    /// The reconstruction job: SLURM's time-limit warning (what --signal=B:USR1
    /// delivers, sent here with scancel --batch) makes the ranks checkpoint
    /// and stop, the script requeues the job, the second run resumes, and the
    /// result equals an uninterrupted run's. A missing scan fails the job at
    /// its first check, before any rank starts.
    @Test(.enabled(if: SlurmJobTests.slurmAvailable, "SLURM is not installed, this is not root, or no cgroup file system is mounted (slurmd needs one): scripts/install-deps.sh slurmctld slurmd slurm-client munge, as root, on a machine or container with /sys/fs/cgroup"))
    func reconstructionCheckpointsOnTheWarningSignalAndRequeues() throws {
        let cluster = try Cluster()
        defer { cluster.stop() }
        let work = cluster.directory + "/work"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let iterations = "200"
        // Shared wisdom: the reference and both runs of the job plan the same algorithms.
        let engine = ["--iterations", iterations, "--probe-start", "1", "--fft-wisdom", work + "/wisdom"]

        let reference = work + "/reference.cxi"
        let a = try MPIRunner.run(ranks: 2, ["recon", DistributedReconTests.scan, "-o", reference, "--quiet"] + engine)
        try #require(a.status == 0, "\(a.stderr)")

        let run = work + "/run"
        let job = try cluster.submit(["--ntasks=2", "--ntasks-per-node=2", "--cpus-per-task=1", "--time=10",
                                      "--output=\(work)/recon-%j.out", "\(Self.root)/jobs/recon.sbatch",
                                      DistributedReconTests.scan, "--print-every", "10"] + engine,
                                     extra: ["NS_RUN_DIR": run, "NS_CHECKPOINT_EVERY": "0"])
        // Signal once iterations are under way (and well before the last).
        try cluster.wait("iterations in \(run)/recon.log") {
            if Self.read(run + "/recon.log").contains("iter   40/") { return true }
            return !["RUNNING", "PENDING"].contains(try cluster.state(job))
        }
        try #require(!Self.read(run + "/recon.log").contains("iter  \(iterations)/"), "the job finished before the signal")
        let signal = try cluster.command("scancel", ["--batch", "--signal=USR1", job])
        try #require(signal.status == 0, "\(signal.stderr)")
        // SLURM holds a requeued job about two minutes; start it in a few
        // seconds instead (not at once: slurmd refuses a start in the second
        // it revoked the job's previous credential).
        try cluster.wait("job \(job) to be requeued") {
            let f = try cluster.jobs(job).first ?? [:]
            return f["Restarts"] == "1" && f["JobState"] == "PENDING" && f["Reason"] == "BeginTime"
        }
        let update = try cluster.command("scontrol", ["update", "JobId=\(job)", "StartTime=now+3"])
        #expect(update.status == 0, "\(update.stderr)")
        let end = try cluster.waitForEnd(job)
        let output = Self.read("\(work)/recon-\(job).out"), log = Self.read(run + "/job.log")
        try #require(end == "COMPLETED", "job \(job) ended \(end):\n\(output)\nslurmctld:\n\(Self.read(cluster.directory + "/log/slurmctld.log").suffix(3000))")

        #expect(log.contains("checkpointed; requeueing job \(job) (restart 1)"), "\(log)")
        #expect(log.contains("restart 1:") && log.contains("continuing from \(run)/checkpoint.h5"), "\(log)")
        let progress = Self.read(run + "/recon.log")
        let stoppedAt = progress.split(separator: "\n").first { $0.contains("stopped by a signal after iteration") }
        let resumedAt = progress.split(separator: "\n").first { $0.contains("resumed from") }
        #expect(stoppedAt != nil && resumedAt != nil, "\(progress)")
        #expect(FileManager.default.fileExists(atPath: run + "/finished"))
        let errors = try HDF5File(path: run + "/recon.cxi", mode: .readOnly)
            .read("/entry_1/image_1/process_1/ns_fourier_error", as: Double.self)
        #expect(errors.count == Int(iterations)!)
        // With the same plans the resumed job ends where the uninterrupted run
        // does (measured plans chosen afresh in each process would differ by
        // up to 1e-2 after 200 iterations); a state the resume lost would
        // differ by far more.
        #expect(DistributedReconTests.relative(try object(run + "/recon.cxi"), try object(reference)) < 1e-5)
        for name in ["object_amplitude.png", "errors.png"] {
            #expect(FileManager.default.fileExists(atPath: "\(run)/preview/\(name)"), "\(name)")
        }

        // Bad input: the job fails at once with the reason, and nothing runs.
        let bad = try cluster.submit(["--ntasks=1", "--ntasks-per-node=1", "--cpus-per-task=1", "--output=\(work)/bad-%j.out", "\(Self.root)/jobs/recon.sbatch",
                                      work + "/missing.cxi"], extra: ["NS_RUN_DIR": work + "/bad"])
        #expect(try cluster.waitForEnd(bad, timeout: 60) == "FAILED")
        #expect(Self.read("\(work)/bad-\(bad).out").contains("the scan '\(work)/missing.cxi' does not exist"))
        #expect(!FileManager.default.fileExists(atPath: work + "/bad"))
    }

    /// The time-limit signal while the ranks are still starting (a slow
    /// start stood in for by a wrapper that sleeps before ns-mpirun): the
    /// ranks die of it before they can catch it, and the script still
    /// requeues the job, which then runs to the end.
    @Test(.enabled(if: SlurmJobTests.slurmAvailable, "SLURM is not installed, this is not root, or no cgroup file system is mounted (slurmd needs one): scripts/install-deps.sh slurmctld slurmd slurm-client munge, as root, on a machine or container with /sys/fs/cgroup"))
    func aSignalWhileTheRanksStartStillRequeues() throws {
        let cluster = try Cluster()
        defer { cluster.stop() }
        let work = cluster.directory + "/work"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let slow = work + "/slow-ns-mpirun"
        try "#!/bin/bash\nsleep 6\nexec \(MPIRunner.executable) \"$@\"\n".write(toFile: slow, atomically: true, encoding: .utf8)
        chmod(slow, 0o755)
        let run = work + "/run"
        let job = try cluster.submit(["--ntasks=2", "--ntasks-per-node=2", "--cpus-per-task=1", "--time=10",
                                      "--output=\(work)/recon-%j.out", "\(Self.root)/jobs/recon.sbatch",
                                      DistributedReconTests.scan, "--iterations", "5", "--quiet"],
                                     extra: ["NS_RUN_DIR": run, "NS_BIN": slow])
        // The step is launched right after this line; its ranks sleep 6 s before ns-mpirun starts.
        try cluster.wait("the first run's start in \(run)/job.log") { Self.read(run + "/job.log").contains("restart 0:") }
        usleep(1_500_000)
        let signal = try cluster.command("scancel", ["--batch", "--signal=USR1", job])
        try #require(signal.status == 0, "\(signal.stderr)")
        try cluster.wait("job \(job) to be requeued") {
            let f = try cluster.jobs(job).first ?? [:]
            return f["Restarts"] == "1" && f["JobState"] == "PENDING" && f["Reason"] == "BeginTime"
        }
        _ = try cluster.command("scontrol", ["update", "JobId=\(job)", "StartTime=now+3"])
        let end = try cluster.waitForEnd(job, timeout: 180)
        let log = Self.read(run + "/job.log")
        #expect(end == "COMPLETED", "job \(job) ended \(end):\n\(Self.read("\(work)/recon-\(job).out"))")
        #expect(log.contains("before it could checkpoint; continuing after the restart") && log.contains("requeueing job \(job) (restart 1)"), "\(log)")
        #expect(try HDF5File(path: run + "/recon.cxi", mode: .readOnly).read("/entry_1/image_1/process_1/ns_fourier_error", as: Double.self).count == 5)
    }

    /// The scaling study: an array task per rank count, then the collector,
    /// held by --dependency=afterok until every task succeeded, merges the
    /// points into a CSV (counted halo bytes as the layout predicts), a table
    /// and a plot.
    @Test(.enabled(if: SlurmJobTests.slurmAvailable, "SLURM is not installed, this is not root, or no cgroup file system is mounted (slurmd needs one): scripts/install-deps.sh slurmctld slurmd slurm-client munge, as root, on a machine or container with /sys/fs/cgroup"))
    func scalingArrayAndItsCollector() throws {
        let cluster = try Cluster()
        defer { cluster.stop() }
        let run = cluster.directory + "/scaling"
        var env = cluster.environment
        env["NS_RUN_DIR"] = run
        env["NS_SCALING_RANKS"] = "1 2"
        env["NS_SBATCH_ARGS"] = "--cpus-per-task=1 --time=10"
        let submit = try MPIRunner.execute("/bin/bash", ["\(Self.root)/jobs/scaling.sh", "--frames", "40", "--frames-per-rank", "20",
                                                         "--frame-size", "64", "--iterations", "1"],
                                           environment: env, timeout: 60)
        try #require(submit.status == 0, "\(submit.stderr)")
        let ids = try #require(submit.stdout.split(separator: "\n").last?.split(separator: " ").map(String.init))
        try #require(ids.count == 2, "\(submit.stdout)")
        let (array, collector) = (ids[0], ids[1])
        let end = try cluster.waitForEnd(collector)
        try #require(end == "COMPLETED", "collector \(collector) ended \(end): \(Self.read(run + "/collect.log"))")

        let tasks = try cluster.jobs(array)
        #expect(tasks.count == 2 && tasks.allSatisfy { $0["JobState"] == "COMPLETED" }, "\(tasks)")
        let started = try #require(try cluster.jobs(collector).first?["StartTime"])
        for t in tasks { #expect(t["EndTime"]! <= started, "the collector started before task \(t["ArrayTaskId"] ?? "?") ended") }

        let csv = Self.read(run + "/scaling.csv").split(separator: "\n")
        #expect(csv.first.map(String.init) == "mode,ranks,frames,frame_size,object_height,object_width,tiles,s_per_iter,fft_s_per_iter,efficiency,fft_normalized_efficiency,halo_bytes_per_rank,halo_bytes_max_rank,reduction_bytes_per_rank,layout_halo_bytes_per_rank,model_halo_bytes_per_rank,allreduce_bytes_per_rank,oversubscribed")
        let rows = csv.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        #expect(rows.map { "\($0[0]) \($0[1])" }.sorted() == ["strong 1", "strong 2", "weak 1", "weak 2"])
        for r in rows {
            let efficiency = Double(r[9]) ?? -1, normalized = Double(r[10]) ?? -1
            let halo = Double(r[11]) ?? -1, layout = Double(r[14]) ?? -2
            #expect(efficiency > 0 && normalized > 0, "\(r)")
            #expect(halo == layout, "counted halo bytes \(halo) differ from the layout's \(layout): \(r)")
            #expect((r[1] == "1") == (halo == 0), "\(r)")
            if r[1] == "2" { #expect(Double(r[16])! > halo, "a whole-object allreduce sends more than the halo: \(r)") }
        }
        #expect(Self.read(run + "/scaling.md").contains("allreduce / halo"))
        let png = try #require(FileManager.default.contents(atPath: run + "/scaling.png"))
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
    }

    /// The streaming session as a batch job: it connects to the detector
    /// given, writes the scan and per-rank logs, publishes its control
    /// endpoint, and ends cleanly on the time-limit warning with nothing lost.
    @Test(.enabled(if: SlurmJobTests.slurmAvailable, "SLURM is not installed, this is not root, or no cgroup file system is mounted (slurmd needs one): scripts/install-deps.sh slurmctld slurmd slurm-client munge, as root, on a machine or container with /sys/fs/cgroup"))
    func streamingSessionAsABatchJob() throws {
        let cluster = try Cluster()
        defer { cluster.stop() }
        let work = cluster.directory + "/work"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let (sim, endpoint) = try StreamTests().detector()
        let run = work + "/stream"
        let job = try cluster.submit(["--ntasks=2", "--ntasks-per-node=2", "--cpus-per-task=1", "--time=10", "--qos=normal",
                                      "--output=\(work)/stream-%j.out", "\(Self.root)/jobs/stream.sbatch", endpoint, "--iterations", "5"],
                                     extra: ["NS_RUN_DIR": run, "NS_SCANS": "1", "NS_CONTROL": "tcp://127.0.0.1:*", "NS_PUBLISH": "none"])
        let end = try cluster.waitForEnd(job)
        sim.finish()
        let output = Self.read("\(work)/stream-\(job).out")
        try #require(end == "COMPLETED", "job \(job) ended \(end):\n\(output)\n\(Self.read(run + "/stream.log"))")
        let report = try StreamTests().report(run + "/scans/scan-1.cxi")
        #expect(report["placed"] as? Int == 60 && report["darks_used"] as? Int == 20, "\(report)")
        #expect(Self.read(run + "/job.log").contains("session ended: 1 scan(s)"))
        #expect(Self.read(run + "/endpoints").contains("control tcp://127.0.0.1:"), "\(Self.read(run + "/endpoints"))")
        let merged = try MPIRunner.run(ranks: nil, ["logs", run])
        #expect(merged.status == 0)
        #expect(merged.stdout.contains(" rank 0 info: stream: scan scan-1 done") && merged.stdout.contains(" rank 1 info: stream: rank 1 of 2 ready"),
                "\(merged.stdout)")

        // The time-limit warning with no scan open: the session ends at once, cleanly.
        let idle = work + "/idle"
        let second = try cluster.submit(["--ntasks=2", "--ntasks-per-node=2", "--cpus-per-task=1", "--time=10", "--qos=normal",
                                         "--output=\(work)/idle-%j.out", "\(Self.root)/jobs/stream.sbatch", "tcp://127.0.0.1:9"],
                                        extra: ["NS_RUN_DIR": idle, "NS_CONTROL": "none", "NS_PUBLISH": "none"])
        // Every rank up (rank 1's log says so), so that srun has a whole step to pass the signal to.
        try cluster.wait("the idle session to start") {
            try (Self.read(idle + "/stream.log").contains("receiving from") && Self.read(idle + "/logs/rank-0001.log").contains("ready"))
                || !["RUNNING", "PENDING"].contains(cluster.state(second))
        }
        let signal = try cluster.command("scancel", ["--batch", "--signal=USR1", second])
        try #require(signal.status == 0, "\(signal.stderr)\n\(Self.read("\(work)/idle-\(second).out"))\n\(Self.read(idle + "/stream.log"))\nslurmd:\n\(Self.read(cluster.directory + "/log/slurmd.log").suffix(3000))")
        let idleEnd = try? cluster.waitForEnd(second, timeout: 60)
        #expect(idleEnd == "COMPLETED", "\(Self.read("\(work)/idle-\(second).out"))\n\(Self.read(idle + "/stream.log"))\n\(Self.read(idle + "/logs/rank-0001.log"))")
        #expect(Self.read(idle + "/job.log").contains("session ended: 0 scan(s)"))
        #expect(Self.read(idle + "/stream.log").contains("shut down after 0 scan(s)"))
    }

    /// Off SLURM the same script runs under mpirun, and refuses bad settings
    /// before it starts anything.
    @Test func reconScriptOnAWorkstation() throws {
        let run = NSTemporaryDirectory() + "ns-ws-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: run) }
        var env = MPIRunner.environment
        env["NS_BIN"] = MPIRunner.executable
        env["NS_RUN_DIR"] = run
        env["NS_RANKS"] = "2"
        let script = "\(Self.root)/jobs/recon.sbatch"
        let ok = try MPIRunner.execute("/bin/bash", [script, DistributedReconTests.scan, "--iterations", "5", "--probe-defocus", "15e-6"],
                                       environment: env)
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(FileManager.default.fileExists(atPath: run + "/recon.cxi") && FileManager.default.fileExists(atPath: run + "/finished"))
        #expect(Self.read(run + "/recon.log").contains("recon: wrote \(run)/recon.cxi"))

        env["NS_RANKS"] = "two"
        let badRanks = try MPIRunner.execute("/bin/bash", [script, DistributedReconTests.scan], environment: env)
        #expect(badRanks.status == 2 && badRanks.stderr.contains("NS_RANKS must be a positive integer, got 'two'"), "\(badRanks.stderr)")
        env["NS_RANKS"] = "2"
        env["NS_CHECKPOINT_EVERY"] = "-1"
        let badEvery = try MPIRunner.execute("/bin/bash", [script, DistributedReconTests.scan], environment: env)
        #expect(badEvery.status == 2 && badEvery.stderr.contains("NS_CHECKPOINT_EVERY must be a whole number"), "\(badEvery.stderr)")
        env["NS_CHECKPOINT_EVERY"] = nil
        let notCXI = run + "/not.cxi"
        try #require(FileManager.default.createFile(atPath: notCXI, contents: Data("text".utf8)))
        let bad = try MPIRunner.execute("/bin/bash", [script, notCXI], environment: env)
        #expect(bad.status == 2 && bad.stderr.contains("is not a readable CXI scan"), "\(bad.stderr)")
    }
}
