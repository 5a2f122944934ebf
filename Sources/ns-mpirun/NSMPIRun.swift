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
        subcommands: [Info.self, Check.self])
}

enum NanosurveyorVersion {
    static let string = "0.1.0"
}
