#!/usr/bin/env bash
# Installs what is missing, builds in release mode and runs the main job on
# its built-in default, on 2 ranks: a simulated scan written to one CXI file,
# reconstructed, and the result written to another.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
. scripts/mpi-env.sh
swift build -c release
export NS_BIN=.build/release/ns-mpirun NS_RANKS=2
run=runs/quickstart
mkdir -p "$run"
bash jobs/workstation.sh info
bash jobs/workstation.sh simulate -o "$run/scan.cxi" --scan 20x20
"$NS_BIN" inspect "$run/scan.cxi"
bash jobs/workstation.sh recon "$run/scan.cxi" -o "$run/recon.cxi" --iterations 50 --probe-defocus 20e-6 --print-every 10
