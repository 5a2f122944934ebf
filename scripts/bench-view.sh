#!/usr/bin/env bash
# The viewer under load: PAGES headless Chromium pages (default 5) watch a
# live scan (default 40x40, 1600 raw frames at 10 Hz) on a 2-rank session
# started with --view; prints the publish-to-draw latency the pages
# reported, the viewer's peak resident memory and the pages' (BENCHMARKS.md).
#   bash scripts/bench-view.sh [PAGES] [SCAN] [RATE]
set -euo pipefail
cd "$(dirname "$0")/.."
pages="${1:-5}" scan="${2:-40x40}" rate="${3:-10}"
bin="${NS_BIN:-.build/release/ns-mpirun}"
[ -x "$bin" ] || { echo "bench-view: no ns-mpirun at $bin (swift build -c release)" >&2; exit 2; }
. scripts/mpi-env.sh
dir=$(mktemp -d /tmp/ns-bench-view.XXXXXX)
"$bin" fccd-sim --scan "$scan" --rate "$rate" --bind 'tcp://127.0.0.1:*' > "$dir/sim.log" 2>&1 &
sim=$!
trap 'kill $sim 2>/dev/null || true; [ -n "${session:-}" ] && kill $session 2>/dev/null || true' EXIT
. scripts/await-match.sh
endpoint=$(await_match "$dir/sim.log" 'tcp://127\.0\.0\.1:[0-9]*') || { cat "$dir/sim.log"; exit 1; }
mpirun -n 2 "$bin" stream --connect "$endpoint" -o "$dir/out" --scans 1 --iterations 50 --view 127.0.0.1:0 > "$dir/stream.log" 2>&1 &
session=$!
url=$(await_match "$dir/stream.log" 'view: http://[^ ]*') || { cat "$dir/stream.log"; exit 1; }
url=${url#view: }
/usr/bin/python3 Tests/Browser/viewer_bench.py "$url" "$pages"
wait $session
grep 'stream: scan .* done' "$dir/stream.log" || { tail -20 "$dir/stream.log"; exit 1; }
rm -rf "$dir"
