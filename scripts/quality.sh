#!/usr/bin/env bash
# The solver's quality bar: a 400-position spiral of 128x128 frames with
# Poisson noise (about 1e6 photons per frame, 60% overlap), 100 iterations
# of DM, of RAAR and epochs of rPIE from a data-derived probe, NRMSE against the truth; then
# the same DM at 1e5 and 1e8 photons with the default Poisson power bound
# and PtyPy's fixed fraction. Figures go to BENCHMARKS.md.
# Usage: bash scripts/quality.sh [RANKS] [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/mpi-env.sh
ranks="${1:-2}"
work="${2:-runs/quality}"
bin=.build/release/ns-mpirun
[ -x "$bin" ] || swift build -c release
mkdir -p "$work"
nrmse() { grep -o 'against the truth [0-9.a-z]*' | awk '{print $4}'; }
for photons in 1e6 1e5 1e8; do
    [ -f "$work/spiral400-$photons.cxi" ] && continue
    mpirun -n "$ranks" "$bin" simulate -o "$work/spiral400-$photons.cxi" --scan spiral:400 --frame-size 128 \
        --photons "$photons" --quiet
done
run() {  # label, file, extra options
    local label="$1" file="$2"; shift 2
    printf '| %s | %s |\n' "$label" "$(mpirun -n "$ranks" "$bin" recon "$file" -o "$work/recon.cxi" \
        --first-probe mean --probe-defocus 20e-6 --print-every 1000 "$@" | nrmse)"
}
echo "| case | object NRMSE |"
echo "| --- | ---: |"
run "DM, 1e6 photons" "$work/spiral400-1e6.cxi"
run "RAAR (beta 0.75), 1e6 photons" "$work/spiral400-1e6.cxi" --algorithm raar
run "rPIE, 1e6 photons, 100 epochs (mini-batches of 64)" "$work/spiral400-1e6.cxi" --algorithm rpie
run "rPIE, 1e6 photons, 60 epochs" "$work/spiral400-1e6.cxi" --algorithm rpie --iterations 60
run "rPIE, 1e6, 100 epochs, --engine-parameter minibatch=32" "$work/spiral400-1e6.cxi" --algorithm rpie --engine-parameter minibatch=32
run "DM, 1e6, --power-bound relax:0.05 (PtyPy's default)" "$work/spiral400-1e6.cxi" --power-bound relax:0.05
run "DM, 1e6, --subpixel 8" "$work/spiral400-1e6.cxi" --subpixel 8
run "DM, 1e6, --subpixel 0 (whole-pixel positions)" "$work/spiral400-1e6.cxi" --subpixel 0
run "DM, 1e5 photons" "$work/spiral400-1e5.cxi"
run "DM, 1e5, --power-bound relax:0.05" "$work/spiral400-1e5.cxi" --power-bound relax:0.05
run "DM, 1e8 photons" "$work/spiral400-1e8.cxi"
run "DM, 1e8, --power-bound relax:0.05" "$work/spiral400-1e8.cxi" --power-bound relax:0.05
