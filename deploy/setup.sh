#!/usr/bin/env bash
# Installs what pipetrain needs on Debian 12 and builds it into ./build.
#   bash deploy/setup.sh            # CUDA backend when /usr/local/cuda/bin/nvcc exists
#   PIPETRAIN_CUDA=OFF bash deploy/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# clang-14 with libclang-rt-14-dev (libFuzzer, the sanitizers) and
# libomp-14-dev build the fuzz targets (fuzz/run_fuzzers.sh).
packages=(build-essential cmake pkg-config git
          protobuf-compiler libprotobuf-dev libabsl-dev
          libgtest-dev libgmock-dev googletest libbenchmark-dev
          openmpi-bin libopenmpi-dev libopenblas-dev libopenblas-openmp-dev clang-format
          sentencepiece
          clang-14 libclang-rt-14-dev libomp-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# The test peers from PyPI (for the python3 first on PATH): each enables
# checks against the real tool; without them those checks are skipped and the
# committed golden files are still compared. matplotlib draws docs/ plots.
# The reference safetensors reader checks `pipetrain ckpt export`
# (tests/ckpt_command_test.cc); without it that one check is skipped.
python3 -m pip install -q safetensors numpy ||
  echo "[setup] warning: pip install safetensors numpy failed; the safetensors export check will be skipped"
# sacreBLEU checks BLEU/chrF live and `pipetrain score` against its CLI
# (tests/metrics_sacrebleu_test.cc); without it the golden file still is.
python3 -m pip install -q sacrebleu ||
  echo "[setup] warning: pip install sacrebleu failed; the live sacreBLEU checks will be skipped"
# TensorBoard's own loader reads pipetrain's event files
# (tests/event_file_writer_test.cc); without it the hand-parsed checks still run.
python3 -m pip install -q tensorboard ||
  echo "[setup] warning: pip install tensorboard failed; the TensorBoard reader check will be skipped"
python3 -m pip install -q matplotlib ||
  echo "[setup] warning: pip install matplotlib failed; docs/scripts plots need it"

cuda_flag=()
if [ -n "${PIPETRAIN_CUDA:-}" ]; then cuda_flag=(-DPIPETRAIN_CUDA="${PIPETRAIN_CUDA}"); fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "${cuda_flag[@]}"
cmake --build build -j"$(nproc)"
echo "[setup] built build/launcher/pipetrain"
