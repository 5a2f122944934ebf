#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit tests in
# process, multi-rank tests under mpirun).
set -euo pipefail
cd "$(dirname "$0")/.."
# SLURM for the job-script tests, Chromium and selenium for the browser tests,
# pyzmq for the remote clients of the CURVE tests, curl and openssl for the
# HTTPS viewer's, Prometheus for the metrics test, tcpdump and iproute2 for the
# two-host test (each skips, saying why,
# where its tools are absent).
bash scripts/install-deps.sh slurmctld slurmd slurm-client munge chromium chromium-driver python3-selenium python3-zmq curl openssl \
    prometheus tcpdump iproute2 iputils-ping python3-h5py
. scripts/mpi-env.sh
# The test process spawns children (mpirun, python with h5py) while other
# tests hold HDF5 files open; a child inherits those descriptors and with
# them HDF5's flock, so a parallel test's open can fail with EAGAIN. The
# product itself spawns nothing; the tests run without HDF5's file locks.
export HDF5_USE_FILE_LOCKING="${HDF5_USE_FILE_LOCKING:-FALSE}"
swift build --build-tests
swift test --skip-build "$@"
