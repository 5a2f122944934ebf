import Foundation
import ArgumentParser

@main
struct NSMPIRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ns-mpirun",
        abstract: "Nanosurveyor: real-time ptychography as one MPI application.",
        discussion: """
            Run under MPI: `mpirun -n 2 ns-mpirun SUBCOMMAND ...` on a workstation, \
            `srun ns-mpirun SUBCOMMAND ...` in a SLURM job. A plain `ns-mpirun` runs as one rank.
            """,
        version: NanosurveyorVersion.string,
        subcommands: [Simulate.self, RawToCXI.self, ReconCommand.self, Inspect.self, Bench.self, Info.self, Check.self,
                      StagesCommand.self, ValidateCommand.self, RunCommand.self, FCCDSim.self, StreamCommand.self, ViewCommand.self, LogsCommand.self, KeysCommand.self])

    /// Parses once per rank; a usage error is printed by the launcher's rank 0
    /// only, so `mpirun -n 64` shows one message instead of 64 interleaved copies.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch is ExitCodeError {
            Foundation.exit(1)
        } catch {
            if let rank = launcherRank(), rank != 0 { Foundation.exit(exitCode(for: error).rawValue) }
            exit(withError: error)
        }
    }

    /// The rank the launcher assigned, known before MPI starts (OpenMPI,
    /// MPICH/Hydra, SLURM's srun); nil when not launched in parallel.
    static func launcherRank() -> Int? {
        let env = ProcessInfo.processInfo.environment
        for key in ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"] {
            if let value = env[key], let rank = Int(value) { return rank }
        }
        return nil
    }
}

enum NanosurveyorVersion {
    static let string = "0.1.0"
}
