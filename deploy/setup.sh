#!/usr/bin/env bash
# Installs what pipetrain needs on Debian 12 and builds it into ./build.
#   bash deploy/setup.sh            # CUDA backend when /usr/local/cuda/bin/nvcc exists
#   PIPETRAIN_CUDA=OFF bash deploy/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

packages=(build-essential cmake pkg-config git
          protobuf-compiler libprotobuf-dev libabsl-dev
          libgtest-dev libgmock-dev googletest libbenchmark-dev
          openmpi-bin libopenmpi-dev libopenblas-dev libopenblas-openmp-dev clang-format
          sentencepiece)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

cuda_flag=()
if [ -n "${PIPETRAIN_CUDA:-}" ]; then cuda_flag=(-DPIPETRAIN_CUDA="${PIPETRAIN_CUDA}"); fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "${cuda_flag[@]}"
cmake --build build -j"$(nproc)"
echo "[setup] built build/launcher/pipetrain"
