#!/usr/bin/env bash
# A scaling study on SLURM: one array task per rank count, each running
# 'ns-mpirun bench scaling' on exactly that many ranks (strong and weak
# points), then a collector that starts only when every task succeeded
# (--dependency=afterok) and merges the points into a table, a CSV and a plot.
#
#   jobs/scaling.sh [ns-mpirun bench scaling options...]     (run where sbatch works)
#
# Environment (defaults in brackets):
#   NS_SCALING_RANKS    rank counts, one array task each ["1 2 4 8 16 32 64 128"]
#   NS_TASKS_PER_NODE   ranks per node, sets the node count [64]
#   NS_RUN_DIR          outputs and logs [runs/scaling-DATE under this directory]
#   NS_BIN              ns-mpirun [on PATH, else .build/release/ns-mpirun]
#   NS_SBATCH_ARGS      more sbatch options for both jobs, e.g. "--qos=debug --time=10" []
#
# Run directory: point-N.csv and point-N.log per rank count, scaling.csv,
# scaling.md, scaling.png, collect.log; prints the two job IDs.
set -euo pipefail
NS_SCRIPT=scaling.sh
NS_JOBS_DIR="$(cd "$(dirname "$0")" && pwd)"
. "$NS_JOBS_DIR/lib.sh"
ns_check_settings

command -v sbatch >/dev/null || ns_die "sbatch not found: run this where SLURM jobs are submitted"
read -r -a counts <<<"${NS_SCALING_RANKS:-1 2 4 8 16 32 64 128}"
[ ${#counts[@]} -gt 0 ] || ns_die "NS_SCALING_RANKS lists no rank counts"
largest=0
for n in "${counts[@]}"; do
    ns_positive "NS_SCALING_RANKS entry" "$n"
    [ "$n" -gt "$largest" ] && largest=$n
done
per_node="${NS_TASKS_PER_NODE:-64}"
ns_positive NS_TASKS_PER_NODE "$per_node"
ns_find_bin
# Options are checked by a dry parse before anything is queued.
"$NS_BIN" bench scaling --help >/dev/null
for arg in "$@"; do [ "$arg" != --sizes ] || ns_die "--sizes is set per array task from NS_SCALING_RANKS"; done
ns_make_run_dir scaling
nodes=$(( (largest + per_node - 1) / per_node ))
read -r -a extra <<<"${NS_SBATCH_ARGS:-}"

array=$(NS_RUN_DIR="$NS_RUN_DIR" NS_BIN="$NS_BIN" NS_SCALING_RANKS="${counts[*]}" \
    sbatch --parsable --export=ALL --array="0-$(( ${#counts[@]} - 1 ))" --nodes="$nodes" --ntasks="$largest" \
        --ntasks-per-node=$(( largest < per_node ? largest : per_node )) --output="$NS_RUN_DIR/point-%a.out" \
        "${extra[@]}" "$NS_JOBS_DIR/scaling-point.sbatch" "$@")
array="${array%%;*}"
collector=$(NS_RUN_DIR="$NS_RUN_DIR" NS_BIN="$NS_BIN" \
    sbatch --parsable --export=ALL --dependency="afterok:$array" --output="$NS_RUN_DIR/collect.log" \
        "${extra[@]}" "$NS_JOBS_DIR/scaling-collect.sbatch")
collector="${collector%%;*}"
ns_log "array job $array (ranks ${counts[*]}), collector $collector; results in $NS_RUN_DIR"
echo "$array $collector"
