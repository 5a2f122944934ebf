#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit tests in
# process, multi-rank tests under mpirun).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
. scripts/mpi-env.sh
swift build --build-tests
swift test --skip-build "$@"
