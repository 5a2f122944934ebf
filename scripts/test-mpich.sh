#!/usr/bin/env bash
# Builds ns-mpirun against MPICH (the family of Cray MPICH at NERSC, where
# MPI handles are ints, not pointers) and runs the multi-rank tests with it
# (not the SLURM job tests: this SLURM launches through PMIx, an OpenMPI path).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh libmpich-dev libhdf5-mpich-dev mpich
# As in test.sh: children spawned by the tests would inherit HDF5's file locks.
export HDF5_USE_FILE_LOCKING="${HDF5_USE_FILE_LOCKING:-FALSE}"
NS_MPI_PKG=mpich NS_HDF5_PKG=hdf5-mpich swift build --scratch-path .build-mpich
swift build --build-tests
NS_MPIRUN_LAUNCHER="$(command -v mpirun.mpich)" NS_MPIRUN_BIN="$PWD/.build-mpich/debug/ns-mpirun" \
    swift test --skip-build --filter IntegrationTests --skip SlurmJobTests
