#!/usr/bin/env bash
# A single-node SLURM on 127.0.0.1 for trying the job scripts and for the
# tests: slurmctld and slurmd from Debian's packages, munge for auth.
#
#   scripts/slurm-local.sh start DIR [CPUS]   configure and start; prints the SLURM_CONF line
#   scripts/slurm-local.sh stop DIR           stop every daemon this script started in DIR
#
# Everything (config, state, spool, logs, PIDs) lives in DIR. The node
# declares CPUS cores (default 8, more than this machine may have, so that
# oversubscribed runs can be scheduled; config_overrides lets slurmd accept
# that). Ports: NS_SLURMCTLD_PORT and NS_SLURMD_PORT, default free ones.
# Needs root (slurmd runs jobs as their user) and the packages slurmctld,
# slurmd, slurm-client and munge (scripts/install-deps.sh slurmctld ...).
set -euo pipefail

usage() { echo "usage: $0 start DIR [CPUS] | stop DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
action="$1"
dir="$(mkdir -p "$2" && cd "$2" && pwd)"
cpus="${3:-8}"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# A process that exists and has not exited (a zombie waits for a parent
# that may never reap it, such as a container's init).
running() { kill -0 "$1" 2>/dev/null && ! grep -qE '^[0-9]+ \(.*\) Z' "/proc/$1/stat" 2>/dev/null; }
alive() { [ -f "$1" ] && running "$(cat "$1")"; }

# Becomes a daemon with every descriptor above 2 closed: one inherited from
# the caller (a pipe a test reads to its end) would otherwise stay open for
# the daemon's lifetime. Call it in a subshell or in the background: it execs.
detached() {
    for fd in /proc/$BASHPID/fd/*; do
        n="${fd##*/}"
        [ "$n" -gt 2 ] && eval "exec $n>&-" 2>/dev/null
    done
    exec "$@"
}

stop() {
    local status=0
    # Jobs still running (a test that gave up on one) end first: their step
    # daemons and tasks would outlive slurmd otherwise.
    if [ -f "$dir/slurm.conf" ] && [ -f "$dir/slurmctld.started-pid" ] && running "$(cat "$dir/slurmctld.started-pid")"; then
        SLURM_CONF="$dir/slurm.conf" scancel --full --user="$(id -un)" 2>/dev/null || true
        for _ in $(seq 50); do
            [ -z "$(SLURM_CONF="$dir/slurm.conf" squeue -h -o %i 2>/dev/null)" ] && break
            sleep 0.1
        done
    fi
    for name in slurmd slurmctld munged; do
        local pidfile="$dir/$name.started-pid"
        [ -f "$pidfile" ] || continue
        local pid
        pid="$(cat "$pidfile")"
        if running "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
            if running "$pid"; then
                echo "slurm-local: $name ($pid) ignored SIGTERM; killing it" >&2
                kill -KILL "$pid" 2>/dev/null || status=1
            fi
        fi
        rm -f "$pidfile"
    done
    return $status
}

start() {
    for tool in slurmctld slurmd sbatch munged; do
        command -v "$tool" >/dev/null || { echo "slurm-local: $tool not found (install slurmctld slurmd slurm-client munge)" >&2; exit 3; }
    done
    [ "$(id -u)" -eq 0 ] || { echo "slurm-local: must run as root (slurmd starts jobs as their users)" >&2; exit 3; }
    awk '$3 == "cgroup" || $3 == "cgroup2" { found = 1 } END { exit !found }' /proc/mounts \
        || { echo "slurm-local: no cgroup file system is mounted (slurmd will not start without one; containers often have none)" >&2; exit 3; }
    [[ "$cpus" =~ ^[1-9][0-9]*$ ]] || { echo "slurm-local: CPUS must be a positive integer, got '$cpus'" >&2; exit 2; }
    mkdir -p "$dir/state" "$dir/spool" "$dir/log"

    # munge: reuse a running munged (its socket is shared by every client),
    # else start one as the munge user, and remember that this script did.
    if ! alive /run/munge/munged.pid; then
        [ -s /etc/munge/munge.key ] || { echo "slurm-local: /etc/munge/munge.key missing (reinstall munge)" >&2; exit 3; }
        mkdir -p /run/munge /var/log/munge /var/lib/munge
        chown munge:munge /run/munge /var/log/munge /var/lib/munge
        chmod 0755 /run/munge
        (detached runuser -u munge -- /usr/sbin/munged </dev/null >/dev/null 2>&1)
        for _ in $(seq 50); do alive /run/munge/munged.pid && break; sleep 0.1; done
        alive /run/munge/munged.pid || { echo "slurm-local: munged did not start (see /var/log/munge/munged.log)" >&2; exit 1; }
        cp /run/munge/munged.pid "$dir/munged.started-pid"
    fi

    local ctld_port="${NS_SLURMCTLD_PORT:-$(free_port)}" d_port="${NS_SLURMD_PORT:-$(free_port)}"
    cat > "$dir/slurm.conf" <<EOF
# Written by scripts/slurm-local.sh: one node on loopback.
ClusterName=nslocal
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=pmix
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
JobRequeue=1
KillWait=5
MinJobAge=600
InactiveLimit=0
NodeName=nsnode NodeAddr=127.0.0.1 NodeHostname=$(hostname) CPUs=$cpus RealMemory=1000 Feature=cpu State=UNKNOWN
PartitionName=debug Nodes=nsnode Default=YES MaxTime=INFINITE OverSubscribe=NO State=UP
EOF
    # Like a Perlmutter CPU node (the scripts' --constraint=cpu); their
# --qos is accepted without accounting.
    echo "PartitionName=regular Nodes=nsnode MaxTime=INFINITE State=UP" >> "$dir/slurm.conf"

    # PMIx's per-step directories under this cluster's folder: job IDs start
    # at 1 in every cluster, and a step's leftover /tmp/spmix_appdir_0_J.0
    # from an earlier one would stop the step of the same ID from starting.
    mkdir -p "$dir/pmix"
    echo "PMIxCliTmpDirBase=$dir/pmix" > "$dir/mpi.conf"

    export SLURM_CONF="$dir/slurm.conf"
    detached setsid slurmctld -D -c -f "$SLURM_CONF" </dev/null >"$dir/log/slurmctld.out" 2>&1 &
    echo $! > "$dir/slurmctld.started-pid"
    detached setsid slurmd -D -N nsnode -f "$SLURM_CONF" </dev/null >"$dir/log/slurmd.out" 2>&1 &
    echo $! > "$dir/slurmd.started-pid"

    # Ready when the node takes jobs.
    for _ in $(seq 300); do
        if sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            echo "export SLURM_CONF=$SLURM_CONF"
            return 0
        fi
        alive "$dir/slurmctld.started-pid" || break
        alive "$dir/slurmd.started-pid" || break
        sleep 0.1
    done
    echo "slurm-local: the node did not come up; logs in $dir/log:" >&2
    tail -n 20 "$dir"/log/*.log "$dir"/log/*.out >&2 || true
    stop || true
    exit 1
}

case "$action" in
    start) start ;;
    stop) stop ;;
    *) usage ;;
esac
