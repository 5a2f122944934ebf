# Sourced by the job scripts in jobs/: input checks, the run directory and
# the launcher (srun inside a SLURM allocation, mpirun on a workstation).
# Each script finds this file through ns_jobs_dir, since sbatch runs a copy
# of the script from its spool directory.

# A time-limit signal that arrives outside a running step is remembered
# (and acted on before the next step) instead of killing the script.
NS_SIGNALLED=
trap 'NS_SIGNALLED=1' USR1 USR2 TERM

ns_die() { echo "$NS_SCRIPT: $*" >&2; exit 2; }
# Progress lines go to the job's output and, once it exists, to job.log in
# the run directory.
ns_log() {
    local line="$NS_SCRIPT: $(date '+%F %T') $*"
    echo "$line"
    if [ -n "${NS_RUN_DIR:-}" ] && [ -d "$NS_RUN_DIR" ]; then echo "$line" >> "$NS_RUN_DIR/job.log"; fi
}

# Checks a positive integer option: ns_positive NAME VALUE.
ns_positive() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || ns_die "$1 must be a positive integer, got '$2'"; }
ns_nonnegative() { [[ "$2" =~ ^[0-9]+$ ]] || ns_die "$1 must be a whole number, got '$2'"; }

# The settings every script shares, checked before anything starts.
ns_check_settings() {
    [ -z "${NS_RANKS:-}" ] || ns_positive NS_RANKS "$NS_RANKS"
    ns_nonnegative NS_MAX_RESTARTS "${NS_MAX_RESTARTS:-10}"
    case "${NS_CONTINUE:-requeue}" in
        requeue | resubmit | none) ;;
        *) ns_die "NS_CONTINUE must be requeue, resubmit or none, got '${NS_CONTINUE}'" ;;
    esac
}

# The repository root (for the default binary and scripts/mpi-env.sh).
ns_root() { cd "$NS_JOBS_DIR/.." && pwd; }

# NS_BIN, else ns-mpirun on PATH, else the release build next to jobs/.
ns_find_bin() {
    local bin="${NS_BIN:-}"
    if [ -z "$bin" ]; then
        if command -v ns-mpirun >/dev/null; then bin="$(command -v ns-mpirun)"; else bin="$(ns_root)/.build/release/ns-mpirun"; fi
    fi
    [ -x "$bin" ] || ns_die "no ns-mpirun at '$bin' (build it with 'swift build -c release', or set NS_BIN)"
    NS_BIN="$bin"
}

# NS_RUN_DIR, else runs/NAME-JOBID under the submission directory; the same
# across a requeue, since the job keeps its ID.
ns_make_run_dir() {
    local name="$1" base="${SLURM_SUBMIT_DIR:-$PWD}"
    NS_RUN_DIR="${NS_RUN_DIR:-$base/runs/$name-${SLURM_JOB_ID:-$(date +%Y%m%d-%H%M%S)}}"
    mkdir -p "$NS_RUN_DIR" || ns_die "cannot create the run directory '$NS_RUN_DIR'"
    [ -w "$NS_RUN_DIR" ] || ns_die "the run directory '$NS_RUN_DIR' is not writable"
    NS_RUN_DIR="$(cd "$NS_RUN_DIR" && pwd)"
}

# Environment for the ranks: one thread each (the solver's parallelism is
# MPI), pinned to cores; OpenMPI settings for a workstation.
ns_environment() {
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    export OMP_PLACES="${OMP_PLACES:-threads}"
    export OMP_PROC_BIND="${OMP_PROC_BIND:-spread}"
    # Parallel HDF5 on a shared file system: no POSIX locks (Lustre, GPFS).
    export HDF5_USE_FILE_LOCKING="${HDF5_USE_FILE_LOCKING:-FALSE}"
    [ -n "${SLURM_JOB_ID:-}" ] || . "$(ns_root)/scripts/mpi-env.sh"
}

# Starts ns-mpirun on the job's ranks in the background; sets NS_PID.
# Inside SLURM: srun with the allocation's tasks (NS_RANKS overrides), bound
# to cores (NS_CPU_BIND: an srun --cpu-bind value, or none); elsewhere:
# mpirun with NS_RANKS (default 2).
ns_launch_background() {
    if [ -n "${SLURM_JOB_ID:-}" ]; then
        local ranks="${NS_RANKS:-${SLURM_NTASKS:-1}}"
        ns_positive NS_RANKS "$ranks"
        local bind=()
        [ "${NS_CPU_BIND:-cores}" = none ] || bind=(--cpu-bind="${NS_CPU_BIND:-cores}")
        srun --ntasks="$ranks" "${bind[@]}" "$NS_BIN" "$@" &
    else
        local ranks="${NS_RANKS:-2}"
        ns_positive NS_RANKS "$ranks"
        mpirun -n "$ranks" "$NS_BIN" "$@" &
    fi
    NS_PID=$!
}

# Waits for the launched step, passing SIGUSR1/SIGUSR2/SIGTERM on to it (srun
# and mpirun forward them to every rank); returns the step's status.
ns_wait() {
    trap 'NS_SIGNALLED=1; ns_log "signal received: asking the ranks to checkpoint and stop"; kill -USR1 "$NS_PID" 2>/dev/null || true' USR1 USR2 TERM
    # A signal that came between the launch and here was only remembered: pass it on now.
    if [ -n "$NS_SIGNALLED" ]; then
        ns_log "signal received before the wait: asking the ranks to checkpoint and stop"
        kill -USR1 "$NS_PID" 2>/dev/null || true
    fi
    local status
    while true; do
        status=0
        wait "$NS_PID" || status=$?
        # wait returns above 128 when a trapped signal interrupted it.
        if [ $status -gt 128 ] && kill -0 "$NS_PID" 2>/dev/null; then continue; fi
        break
    done
    trap 'NS_SIGNALLED=1' USR1 USR2 TERM
    return $status
}

# Asks for this job to run again after a checkpoint: SLURM requeue (the
# default; the job keeps its ID and run directory), a new submission that
# waits for this one, or nothing (the user resumes by hand).
ns_continue_later() {
    local how="${NS_CONTINUE:-requeue}" limit="${NS_MAX_RESTARTS:-10}"
    local restarts=$(( ${SLURM_RESTART_COUNT:-0} + ${NS_RESUBMITS:-0} ))
    if [ -z "${SLURM_JOB_ID:-}" ] || [ "$how" = none ]; then
        ns_log "checkpointed; run the same command again to continue"
        return 0
    fi
    if [ "$restarts" -ge "$limit" ]; then
        ns_log "checkpointed, but this job already ran $restarts times (NS_MAX_RESTARTS=$limit): not continuing"
        return 1
    fi
    case "$how" in
        requeue)
            ns_log "checkpointed; requeueing job $SLURM_JOB_ID (restart $((restarts + 1)))"
            scontrol requeue "$SLURM_JOB_ID"
            # The requeue ends this script; should it not, do not fall through.
            sleep 60
            ;;
        resubmit)
            # A new job: the script's #SBATCH lines and NS_SBATCH_ARGS, not the
            # options the first submission gave on the command line.
            local script="$NS_JOBS_DIR/$NS_SCRIPT" extra=()
            read -r -a extra <<<"${NS_SBATCH_ARGS:-}"
            ns_log "checkpointed; resubmitting $script to start after job $SLURM_JOB_ID"
            NS_RUN_DIR="$NS_RUN_DIR" NS_RESUBMITS=$(( ${NS_RESUBMITS:-0} + 1 )) \
                sbatch --dependency="afterany:$SLURM_JOB_ID" --export=ALL "${extra[@]}" "$script" "${NS_ARGS[@]}"
            ;;
    esac
}
