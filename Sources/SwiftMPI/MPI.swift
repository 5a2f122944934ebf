import CMPI

/// Process-wide MPI state: initialization, finalization and library facts.
public enum MPI {
    public enum ThreadLevel: Sendable {
        case single, funneled, serialized, multiple

        var raw: Int32 {
            switch self {
            case .single: nsmpi_thread_single()
            case .funneled: nsmpi_thread_funneled()
            case .serialized: nsmpi_thread_serialized()
            case .multiple: nsmpi_thread_multiple()
            }
        }
    }

    public static var isInitialized: Bool {
        var flag: Int32 = 0
        MPI_Initialized(&flag)
        return flag != 0
    }

    public static var isFinalized: Bool {
        var flag: Int32 = 0
        MPI_Finalized(&flag)
        return flag != 0
    }

    /// Initializes MPI (once per process; later calls return the same world)
    /// and installs MPI_ERRORS_RETURN so failures become thrown errors.
    @discardableResult
    public static func initialize(threadLevel: ThreadLevel = .serialized) throws -> Communicator {
        if !isInitialized {
            var provided: Int32 = 0
            try check(MPI_Init_thread(nil, nil, threadLevel.raw, &provided), "MPI_Init_thread")
            if provided < threadLevel.raw {
                throw MPIError(call: "MPI_Init_thread", code: 0,
                               reason: "thread support \(threadLevel) requested but the MPI library provides level \(provided)")
            }
        }
        try check(MPI_Comm_set_errhandler(nsmpi_comm_world(), nsmpi_errors_return()), "MPI_Comm_set_errhandler(MPI_COMM_WORLD)")
        try check(MPI_Comm_set_errhandler(nsmpi_comm_self(), nsmpi_errors_return()), "MPI_Comm_set_errhandler(MPI_COMM_SELF)")
        return try world
    }

    /// MPI_COMM_WORLD (never freed by the wrapper).
    public static var world: Communicator {
        get throws { try Communicator(borrowing: nsmpi_comm_world()) }
    }

    public static func finalize() throws {
        if isInitialized && !isFinalized { try check(MPI_Finalize(), "MPI_Finalize") }
    }

    /// Ends every rank of the job: for unrecoverable failures only.
    public static func abort(code: Int32) -> Never {
        MPI_Abort(nsmpi_comm_world(), code)
        fatalError("MPI_Abort returned")
    }

    public static var libraryVersion: String {
        var buffer = [CChar](repeating: 0, count: Int(nsmpi_max_library_version_string()) + 1)
        var length: Int32 = 0
        guard MPI_Get_library_version(&buffer, &length) == nsmpi_success() else { return "unknown" }
        let bytes = buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self).trimmingTrailingWhitespace()
    }

    public static var standardVersion: String {
        var major: Int32 = 0, minor: Int32 = 0
        MPI_Get_version(&major, &minor)
        return "\(major).\(minor)"
    }

    public static var processorName: String {
        var buffer = [CChar](repeating: 0, count: Int(nsmpi_max_processor_name()) + 1)
        var length: Int32 = 0
        guard MPI_Get_processor_name(&buffer, &length) == nsmpi_success() else { return "unknown" }
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Seconds since an arbitrary time in the past (MPI_Wtime).
    public static func wallTime() -> Double { MPI_Wtime() }

    /// The variables in which launchers give a task the job's task count:
    /// srun's step, MPICH's Hydra (and PMI-1 launchers), OpenMPI's mpirun.
    public static let launcherTaskCounts = ["SLURM_STEP_NUM_TASKS", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"]

    /// Why this process is one of several copies that each run alone: the
    /// launcher started more tasks than the world MPI initialized has (an
    /// MPI library that does not speak the launcher's process-management
    /// interface gives every task a world of one, and they race on the same
    /// files). Nil when the two agree.
    public static func launcherMismatch(worldSize: Int, environment: [String: String]) -> String? {
        guard worldSize == 1 else { return nil }
        for name in launcherTaskCounts {
            guard let text = environment[name], let n = Int(text), n > 1 else { continue }
            return "the launcher started \(n) tasks (\(name)=\(n)) but MPI sees a world of 1: each task would run alone as rank 0 "
                + "and they would overwrite each other's files. The launcher and the MPI library this binary is linked with "
                + "(\(libraryVersion.split(separator: "\n").first ?? "")) do not speak to each other: under SLURM give srun the "
                + "process-management interface the library uses (srun --mpi=pmi2 or --mpi=pmix; `srun --mpi=list` names them), "
                + "and on a workstation start an OpenMPI build with OpenMPI's mpirun and an MPICH build with MPICH's mpiexec"
        }
        return nil
    }
}

extension String {
    func trimmingTrailingWhitespace() -> String {
        var s = Substring(self)
        while let last = s.last, last.isWhitespace || last == "\0" { s.removeLast() }
        return String(s)
    }
}
