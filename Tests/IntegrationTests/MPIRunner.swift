import Foundation
import Testing

/// Launches the built `ns-mpirun` under `mpirun` and collects its output.
enum MPIRunner {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String

        /// The JSON objects printed one per line (rank order).
        func jsonLines() throws -> [[String: Any]] {
            try stdout.split(separator: "\n").filter { $0.hasPrefix("{") }.map {
                try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
        }

        func decodeLines<T: Decodable>(_ type: T.Type) throws -> [T] {
            try stdout.split(separator: "\n").filter { $0.hasPrefix("{") }.map {
                try JSONDecoder().decode(T.self, from: Data($0.utf8))
            }
        }
    }

    /// The executable next to the test bundle (both live in .build/<config>/),
    /// unless NS_MPIRUN_BIN names another.
    static var executable: String {
        if let path = ProcessInfo.processInfo.environment["NS_MPIRUN_BIN"] { return path }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while dir.path != "/" {
            let candidate = dir.appendingPathComponent("ns-mpirun").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir.deleteLastPathComponent()
        }
        return ".build/debug/ns-mpirun"
    }

    /// `mpirun` on the PATH, unless NS_MPIRUN_LAUNCHER names another (e.g. mpirun.mpich).
    static var mpirun: String? {
        if let launcher = ProcessInfo.processInfo.environment["NS_MPIRUN_LAUNCHER"] { return launcher }
        for dir in ["/usr/bin", "/usr/local/bin"] + (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) {
            let p = dir + "/mpirun"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// The test process itself runs as an MPI singleton (WrapperTests), which
    /// leaves its own job's OMPI_/PMIX_ variables in the environment; a child
    /// mpirun that inherits them joins the wrong job and fails or hangs.
    static var environment: [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { key, _ in
            !["OMPI_", "PMIX_", "OPAL_", "ORTE_"].contains { key.hasPrefix($0) }
        }
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        env["OMPI_MCA_pml"] = "ob1"
        env["OMPI_MCA_btl"] = "self,vader"
        env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
        return env
    }

    /// Mounts a tmpfs of `size` (mount's notation, "256k") on the existing
    /// folder `path`: a small disk to fill. Nil when mounted (umount it
    /// afterwards), else why not: containers without CAP_SYS_ADMIN cannot mount.
    static func mountSmallDisk(at path: String, size: String) throws -> String? {
        let mount = try execute("/bin/mount", ["-t", "tmpfs", "-o", "size=" + size, "tmpfs", path])
        return mount.status == 0 ? nil : "cannot mount a tmpfs (\(mount.stderr.trimmingCharacters(in: .whitespacesAndNewlines)))"
    }

    /// Runs `ns-mpirun` on `ranks` ranks under mpirun, or directly (one rank, no launcher) when `ranks` is nil.
    static func run(ranks: Int?, _ arguments: [String], timeout: TimeInterval = 120) throws -> Result {
        let binary = executable
        try #require(FileManager.default.isExecutableFile(atPath: binary), "ns-mpirun not built at \(binary)")
        if let ranks {
            let launcher = try #require(mpirun, "mpirun not found: install openmpi-bin (see README)")
            // More ranks than cores: OpenMPI needs leave to oversubscribe (set in the
            // environment, since MPICH's Hydra rejects the --oversubscribe flag).
            return try execute(launcher, ["-n", String(ranks), binary] + arguments, timeout: timeout)
        }
        return try execute(binary, arguments, timeout: timeout)
    }

    /// Runs any program to completion (killed past `timeout`), its output captured.
    static func execute(_ program: String, _ arguments: [String], environment: [String: String] = environment,
                        timeout: TimeInterval = 120) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let outData = LockedData(), errData = LockedData()
        out.fileHandleForReading.readabilityHandler = { outData.append($0.availableData) }
        err.fileHandleForReading.readabilityHandler = { errData.append($0.availableData) }
        try process.run()
        ChildProcesses.await(process, timeout: timeout, what: "\(program) \(arguments)")
        ChildProcesses.drain(out, into: outData)
        ChildProcesses.drain(err, into: errData)
        return Result(status: ChildProcesses.status(process), stdout: outData.string, stderr: errData.string)
    }
}

final class LockedData: @unchecked Sendable {
    private var data = Data()
    private let lock = NSLock()
    func append(_ more: Data) { lock.lock(); data.append(more); lock.unlock() }
    var string: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
}
