import Foundation

/// `ns-mpirun view` run as a child of rank 0 for `stream --view`: its own
/// process, so nothing it does can block or crash the session; it ends
/// with the session (and by itself if the session is killed).
final class ViewerChild {
    private let process = Process()

    /// `files`: the session's output folder, so its written scans can be opened from the page.
    /// `curveSecret`: the session's own key pair, where its ports speak CURVE (a session lets its own key in).
    init(publish: String, control: String, http: String, files: String?, curveSecret: String?) throws {
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["view", "--session", "\(publish),\(control)", "--http", http, "--parent", "\(getpid())"]
            + (files.map { ["--files", $0] } ?? [])
            + (curveSecret.map { ["--curve-secret", $0, "--session-key", $0] } ?? [])
        // MPI's launcher variables would make the child think it is a rank.
        process.environment = ProcessInfo.processInfo.environment.filter { key, _ in
            !["OMPI_", "PMI", "PMIX_", "SLURM_PROCID", "HYDRA_", "MPI_LOCALRANKID"].contains { key.hasPrefix($0) }
        }
        try process.run()
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}
