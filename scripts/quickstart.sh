#!/usr/bin/env bash
# Installs what is missing, builds in release mode and runs the main job on
# its built-in default, on 2 ranks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
. scripts/mpi-env.sh
swift build -c release
bin=.build/release/ns-mpirun
NS_BIN="$bin" NS_RANKS=2 bash jobs/workstation.sh info
