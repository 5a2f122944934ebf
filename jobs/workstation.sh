#!/usr/bin/env bash
# Runs ns-mpirun on this workstation under mpirun.
#   jobs/workstation.sh [ns-mpirun arguments...]      (default: info)
# Environment: NS_RANKS (default 2), NS_BIN (default .build/release/ns-mpirun).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
ranks="${NS_RANKS:-2}"
bin="${NS_BIN:-$root/.build/release/ns-mpirun}"

[[ "$ranks" =~ ^[1-9][0-9]*$ ]] || { echo "workstation.sh: NS_RANKS must be a positive integer, got '$ranks'" >&2; exit 2; }
[ -x "$bin" ] || { echo "workstation.sh: no ns-mpirun at $bin (build it: swift build -c release)" >&2; exit 2; }
command -v mpirun >/dev/null || { echo "workstation.sh: mpirun not found (bash scripts/install-deps.sh)" >&2; exit 2; }

. "$root/scripts/mpi-env.sh"
[ $# -gt 0 ] || set -- info
exec mpirun -n "$ranks" "$bin" "$@"
