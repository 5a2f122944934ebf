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
began=$SECONDS
bash jobs/workstation.sh info
# Raw fast-CCD frames with dark frames, as the detector would record them.
bash jobs/workstation.sh simulate -o "$run/raw.cxi" --scan 20x20 --raw --dark-frames 16
"$NS_BIN" inspect "$run/raw.cxi"
bash jobs/workstation.sh raw2cxi "$run/raw.cxi" -o "$run/scan.cxi"
bash jobs/workstation.sh recon "$run/scan.cxi" -o "$run/recon.cxi" --iterations 50 --print-every 10 \
    --preview "$run/preview" | tee "$run/recon.log"
# The live session: the virtual detector sends the raw scan over ZeroMQ at
# 20 frames/s; the session reconstructs while it arrives and writes live/scan-1.cxi.
"$NS_BIN" fccd-sim --input "$run/raw.cxi" --rate 20 --bind 'tcp://127.0.0.1:*' > "$run/fccd-sim.log" 2>&1 &
sim=$!
. scripts/await-match.sh
endpoint=$(await_match "$run/fccd-sim.log" 'tcp://127\.0\.0\.1:[0-9]*' 30) \
    || { cat "$run/fccd-sim.log"; echo "quickstart: fccd-sim did not start" >&2; exit 1; }
# --view: the web front-end beside rank 0; open the address it prints to watch the scan arrive.
# --truth: the live solve is judged against the simulation it streams.
bash jobs/workstation.sh stream --connect "$endpoint" -o "$run/live" --scans 1 --iterations 50 \
    --truth "$run/raw.cxi" --view "127.0.0.1:${NS_VIEW_PORT:-8080}" | tee "$run/stream.log"
wait "$sim"

# What ran, its figures, and where each result is.
nrmse=$(grep -o 'against the truth [0-9.]*' "$run/recon.log" | awk '{print $4}')
done_line=$(grep -m1 'stream: scan .* done:' "$run/stream.log" || true)
placed=$(grep -o '[0-9]* of [0-9]* placed' <<<"$done_line" | sed 's/ placed//' || true)
live=$(sed -n 's/.*; wrote \(.*\) \([0-9.]*\) s after the last frame.*/\1/p' <<<"$done_line")
after=$(sed -n 's/.*; wrote .* \([0-9.]*\) s after the last frame.*/\1/p' <<<"$done_line")
view=$(grep -o 'view: http://[^ ]*' "$run/stream.log" | head -1 | cut -c7- || true)
live_nrmse=$(grep -o 'NRMSE against the truth [0-9.]*' "$run/stream.log" | awk '{print $5}' || true)
echo
echo "Quick start finished in $((SECONDS - began)) s on 2 ranks:"
echo "  simulated raw scan (400 frames, 16 darks)   $run/raw.cxi"
echo "  cleaned scan (raw2cxi)                      $run/scan.cxi"
echo "  reconstruction, 50 DM iterations            $run/recon.cxi   object NRMSE against the truth ${nrmse:-?}"
echo "  previews (object, probe, error curves)      $run/preview/"
echo "  live scan, sent at 20 frames/s              ${live:-not written (see $run/stream.log)}   ${placed:-?} frames placed, written ${after:-?} s after the last frame, NRMSE ${live_nrmse:-?}"
echo "  live view (while the session ran)           ${view:-did not start (see $run/stream.log)}; watch the next one with stream --view 127.0.0.1:8080;
                                              browse the files with: ns-mpirun view --files $run"
echo "  logs                                        $run/recon.log, $run/stream.log, $run/fccd-sim.log,"
echo "                                              every rank's in $run/live/logs/ (merged: ns-mpirun logs $run/live/logs)"
