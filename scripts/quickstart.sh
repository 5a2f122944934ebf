#!/usr/bin/env bash
# Installs what is missing, builds in release mode and runs the main job on
# its built-in default, on 2 ranks: a simulated raw scan written to one CXI
# file, cleaned into another, reconstructed, and the result written to a third.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
. scripts/mpi-env.sh
swift build -c release
export NS_BIN=.build/release/ns-mpirun NS_RANKS=2
run=runs/quickstart
mkdir -p "$run"
bash jobs/workstation.sh info
# Raw fast-CCD frames with dark frames, as the detector would record them.
bash jobs/workstation.sh simulate -o "$run/raw.cxi" --scan 20x20 --raw --dark-frames 16
"$NS_BIN" inspect "$run/raw.cxi"
bash jobs/workstation.sh raw2cxi "$run/raw.cxi" -o "$run/scan.cxi" --probe-defocus 20e-6
bash jobs/workstation.sh recon "$run/scan.cxi" -o "$run/recon.cxi" --iterations 50 --print-every 10 \
    --preview "$run/preview"
