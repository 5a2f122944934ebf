#!/usr/bin/env bash
# Probe modes: a 400-position spiral of 128x128 frames at about 1e7 photons
# per frame, lit by 3 incoherent modes of 70/20/10% of the power, solved by
# DM with one probe and with 3 modes (400 iterations each, the first probe
# from the recorded optics); the same scan with a coherent beam gives the
# floor. Prints each object NRMSE and the recovered mode powers.
# Figures go to BENCHMARKS.md.
# Usage: bash scripts/modes.sh [RANKS] [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/mpi-env.sh
ranks="${1:-2}"
work="${2:-runs/quality}"
bin=.build/release/ns-mpirun
[ -x "$bin" ] || swift build -c release
mkdir -p "$work"
modes="$work/spiral400-modes-1e7.cxi" coherent="$work/spiral400-1e7.cxi"
[ -f "$modes" ] || mpirun -n "$ranks" "$bin" simulate -o "$modes" --scan spiral:400 --photons 1e7 \
    --probe-modes 3 --mode-powers 70,20,10 --quiet
[ -f "$coherent" ] || mpirun -n "$ranks" "$bin" simulate -o "$coherent" --scan spiral:400 --photons 1e7 --quiet
recon() {  # label, file, extra options
    local label="$1" file="$2"; shift 2
    local nrmse
    nrmse=$(mpirun -n "$ranks" "$bin" recon "$file" -o "$work/modes.cxi" --iterations 400 --print-every 1000 "$@" \
        | grep -o 'against the truth [0-9.]*' | awk '{print $4}')
    printf '| %s | %s |\n' "$label" "$nrmse"
}
echo "| case | object NRMSE |"
echo "| --- | ---: |"
recon "70/20/10% beam, one probe" "$modes"
recon "70/20/10% beam, --probe-modes 3" "$modes" --probe-modes 3
if python3 -c 'import h5py' 2> /dev/null; then
    python3 -c 'import h5py, sys; print("recovered powers (truth 0.7, 0.2, 0.1):", h5py.File(sys.argv[1], "r")["/entry_1/instrument_1/source_1/ns_mode_powers"][()])' "$work/modes.cxi"
fi
recon "coherent beam, one probe (the floor)" "$coherent"
