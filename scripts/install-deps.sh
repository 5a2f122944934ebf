#!/usr/bin/env bash
# Installs the Debian packages Nanosurveyor builds, runs and tests with,
# skipping those already present. Run as root on Debian 12 (bookworm).
set -euo pipefail

packages=(pkg-config libopenmpi-dev openmpi-bin libfftw3-dev libhdf5-openmpi-dev libzmq3-dev libpng-dev libtiff-dev)
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
