#!/usr/bin/env bash
# Installs what is missing, builds in release mode and runs the main job on
# its built-in default, on 2 ranks: a simulated raw scan written to one CXI
# file, cleaned into another, reconstructed, and the result written to a third;
# then the same scan live: sent by the virtual detector at 20 Hz, received,
# cleaned and reconstructed while it streams, and written.
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
bash jobs/workstation.sh raw2cxi "$run/raw.cxi" -o "$run/scan.cxi"
bash jobs/workstation.sh recon "$run/scan.cxi" -o "$run/recon.cxi" --iterations 50 --print-every 10 \
    --preview "$run/preview"
# The live session: the virtual detector sends the raw scan over ZeroMQ at
# 20 frames/s; the session reconstructs while it arrives and writes live/scan-1.cxi.
"$NS_BIN" fccd-sim --input "$run/raw.cxi" --rate 20 --bind 'tcp://127.0.0.1:*' > "$run/fccd-sim.log" 2>&1 &
sim=$!
endpoint=""
for _ in $(seq 300); do
    endpoint=$(grep -o 'tcp://127\.0\.0\.1:[0-9]*' "$run/fccd-sim.log" | head -1 || true)
    [ -n "$endpoint" ] && break
    sleep 0.1
done
[ -n "$endpoint" ] || { cat "$run/fccd-sim.log"; echo "quickstart: fccd-sim did not start" >&2; exit 1; }
bash jobs/workstation.sh stream --connect "$endpoint" -o "$run/live" --scans 1 --iterations 50
wait "$sim"
cat "$run/fccd-sim.log"
