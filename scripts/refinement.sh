#!/usr/bin/env bash
# DM then ML on a 1600-position spiral of 128x128 frames at about 1e7
# photons per frame: DM alone for 600 iterations (its NRMSE against the
# truth every 50), DM 100 then ML 100, and ML alone for 200 from the same
# first probe. Figures go to BENCHMARKS.md.
# Usage: bash scripts/refinement.sh [RANKS] [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/mpi-env.sh
ranks="${1:-2}"
work="${2:-runs/quality}"
bin=.build/release/ns-mpirun
[ -x "$bin" ] || swift build -c release
mkdir -p "$work"
scan="$work/spiral1600-1e7.cxi"
[ -f "$scan" ] || mpirun -n "$ranks" "$bin" simulate -o "$scan" --scan spiral:1600 --frame-size 128 --photons 1e7 --quiet
recon() { mpirun -n "$ranks" "$bin" recon "$scan" -o "$work/refinement.cxi" --first-probe mean --probe-defocus 20e-6 "$@"; }
echo "DM alone, NRMSE every 50 iterations:"
recon --iterations 600 --print-every 50 --truth-every 50 | grep -o 'iter *[0-9]*/600.*nrmse [0-9.]*' | awk '{print $2, $NF}'
echo "DM 100 then ML 100:"
recon --engines dm:100,ml:100 --print-every 1000 | grep -o 'against the truth [0-9.]*'
echo "ML alone, 200 iterations:"
recon --algorithm ml --iterations 200 --print-every 1000 | grep -o 'against the truth [0-9.]*'
