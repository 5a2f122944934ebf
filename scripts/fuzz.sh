#!/usr/bin/env bash
# Usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]
#        scripts/fuzz.sh all SECONDS      (each target in turn)
# Builds ns-fuzz with AddressSanitizer, coverage and libFuzzer (in
# .build-fuzz, apart from the normal build) and runs TARGET for SECONDS,
# starting from the committed seeds in Tests/FuzzCorpus/TARGET. Inputs that
# reach new code go to .build-fuzz/corpus/TARGET; an input that crashes,
# leaks or hangs is kept as .build-fuzz/findings/TARGET-* and the script
# fails. Targets: messages (detector messages into rank 0's coordinator),
# control (control-port requests), pipeline (pipeline files).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
    echo "usage: scripts/fuzz.sh TARGET|all SECONDS [libFuzzer options...]" >&2
    exit 2
fi
target=$1 seconds=$2
shift 2
case "$seconds" in ''|*[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$seconds'" >&2; exit 2 ;; esac
if [ "$target" = all ]; then
    for t in messages control pipeline; do "$0" "$t" "$seconds" "$@"; done
    exit 0
fi
if [ ! -d "Tests/FuzzCorpus/$target" ]; then
    echo "fuzz.sh: no target '$target' (no Tests/FuzzCorpus/$target); targets: $(ls Tests/FuzzCorpus | tr '\n' ' ')" >&2
    exit 2
fi

# The toolchain's libFuzzer without its main: ns-fuzz keeps its own and
# calls LLVMFuzzerRunDriver.
swiftc_path=$(readlink -f "$(command -v swiftc)")
runtime=$(ls "$(dirname "$swiftc_path")"/../lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a 2>/dev/null | head -1 || true)
if [ -z "$runtime" ]; then
    echo "fuzz.sh: this Swift toolchain has no libclang_rt.fuzzer_no_main-x86_64.a (looked beside $swiftc_path)" >&2
    exit 1
fi
. scripts/mpi-env.sh
mkdir -p .build-fuzz
if ! swift build --product ns-fuzz --scratch-path .build-fuzz \
    -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp \
    -Xswiftc -DNS_FUZZING -Xlinker "$runtime" -Xlinker -lstdc++ >.build-fuzz/build.log 2>&1; then
    grep -v "Cannot export local symbol" .build-fuzz/build.log | tail -40 >&2
    echo "fuzz.sh: the fuzzing build failed; the log is .build-fuzz/build.log" >&2
    exit 1
fi

mkdir -p ".build-fuzz/corpus/$target" .build-fuzz/findings
log=".build-fuzz/$target.log"
# libFuzzer stops itself after SECONDS; the outer limit only catches a wedged run.
set +e
timeout -s KILL $((seconds + 300)) .build-fuzz/debug/ns-fuzz "$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix=".build-fuzz/findings/$target-" "$@" \
    ".build-fuzz/corpus/$target" "Tests/FuzzCorpus/$target" >"$log" 2>&1
status=$?
set -e
grep -E "^(stat::|Done|==[0-9]+==|SUMMARY|artifact_prefix)" "$log" || true
if [ $status -ne 0 ]; then
    echo "fuzz.sh: $target failed (status $status); the log is $log:" >&2
    tail -40 "$log" >&2
    exit 1
fi
echo "fuzz.sh: $target: no crash in ${seconds} s"
