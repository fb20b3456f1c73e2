#!/usr/bin/env bash
# The GPU checks of the CUDA backend, prepared so that a session lent a GPU
# machine (15 minutes of device time) spends them running, not building.
#
#   deploy/gpu_check.sh pack [BUILD_DIR]   # here, no GPU needed: bundle the GPU test
#                                          # binaries (+ libraries the GPU machine lacks) into .gpu/
#   deploy/gpu_check.sh run                # there: run them, logs and JSON results into $OUT (or ./gpu-out)
#   GPU_CHECK_BENCH=1 deploy/gpu_check.sh run   # also the training benchmark beside PyTorch
#                                          # (bench/run_gpu_bench.sh; torch --compile takes minutes)
#
# `run` executes every tests/cuda_*_test binary (each GPU op against the CPU op,
# forward and backward, f32 and bf16) and the NCCL communicator test under
# mpirun with 2 ranks on one GPU (the host-staged fallback), then prints one
# summary line per binary; then pipetrain itself under mpirun (2 pipeline
# stages on the GPU, 20 steps in f32 and bf16, each against a CPU run's
# losses); then gpu_layer_bench's JSON lines (bench.jsonl).
# It records the device, driver and CUDA versions (device.txt) and ends with one
# verdict line (also in summary.txt). On a machine with a GPU (`nvidia-smi -L`
# lists one) a SKIPPED test fails the run: a GPU test skips only when it could
# not use the GPU, so a skip there would read as a pass that checked nothing.
# docs/gpu-validation.md says what was run when.
set -uo pipefail
mode=${1:-}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# `pack` fills $staging, then compresses it into .gpu/bundle.tar.xz (OpenBLAS
# alone is 35 MiB; the tree and the carried folder travel within 64 MiB).
staging="$root/.gpu-staging"
bundle="$staging"

case "$mode" in
  pack)
    build=${2:-$root/build}
    bins=$(ls "$build"/tests/cuda_*_test "$build"/tests/nccl_communicator_test \
               "$build"/bench/gpu_layer_bench "$build"/bench/cpu_train_bench \
               "$build"/launcher/pipetrain 2>/dev/null)
    [ -n "$bins" ] || { echo "no GPU test binaries under $build/tests: build with CUDA first" >&2; exit 1; }
    rm -rf "$bundle"
    bundler=$(ls "$root"/../shared/tools/device-bundle /work/shared/tools/device-bundle 2>/dev/null | head -1)
    [ -n "$bundler" ] || { echo "device-bundle not found (../shared/tools)" >&2; exit 1; }
    # shellcheck disable=SC2086
    "$bundler" "$bundle" $bins
    # The toolkit the binaries were built with: the GPU machine may have another.
    { command -v nvcc > /dev/null && nvcc --version | grep -E 'release|Build'; } > "$bundle/toolkit.txt" 2>&1
    peer=$(ls "$root"/../shared/peers/torch_deepnorm.py /work/shared/peers/torch_deepnorm.py 2>/dev/null | head -1)
    [ -n "$peer" ] && cp "$peer" "$bundle/" && cp "$root/bench/run_gpu_bench.sh" "$bundle/"
    cp "$root/configs/tiny.pbtxt" "$bundle/"
    grep -qx '/.gpu/' "$root/.git/info/exclude" 2>/dev/null || echo '/.gpu/' >> "$root/.git/info/exclude"
    echo "packed: $(ls "$bundle/bin" | tr '\n' ' ')"
    mkdir -p "$root/.gpu"
    tar -C "$staging" -cJf "$root/.gpu/bundle.tar.xz" .
    grep -qx '/.gpu-staging/' "$root/.git/info/exclude" 2>/dev/null || echo '/.gpu-staging/' >> "$root/.git/info/exclude"
    du -h "$root/.gpu/bundle.tar.xz"
    echo "now: run(command='bash deploy/gpu_check.sh run', carry=['.gpu'], timeout_s=480)"
    ;;
  run)
    out=${OUT:-$root/gpu-out}
    mkdir -p "$out"
    bundle=/tmp/pipetrain-gpu-bundle
    rm -rf "$bundle" && mkdir -p "$bundle" && tar -C "$bundle" -xJf "$root/.gpu/bundle.tar.xz"
    # shellcheck disable=SC1091
    source "$bundle/env.sh"
    summary="$out/summary.txt"
    : > "$summary"
    # Said lines go to the output and to summary.txt, which comes back with $OUT.
    say() { echo "$*" | tee -a "$summary"; }
    # The names of the tests a GoogleTest log reports as skipped, one a line
    # (the "[  SKIPPED ] 3 tests, listed below:" count line has no dot).
    skipped_in() { sed -nE 's/^\[  SKIPPED \] ([^ ]+\.[^ ]+)( \([0-9]+ ms\))?$/\1/p' "$1" | sort -u; }
    gpu=$(nvidia-smi -L 2>/dev/null | grep -m1 '^GPU ')
    first_bin=$(ls "$bundle"/bin/cuda_*_test 2>/dev/null | head -1)
    nvcc=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
    if command -v nvidia-smi > /dev/null; then
      query=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | paste -sd ';')
    else
      query="nvidia-smi not found"
    fi
    {
      echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
      echo "gpu: ${gpu:-none (nvidia-smi -L lists no GPU)}"
      echo "name, driver, memory: $query"
      echo "cuda (highest the driver supports, per nvidia-smi): $(nvidia-smi 2>/dev/null | grep -oE 'CUDA Version: *[0-9.]+' | grep -oE '[0-9.]+$' || echo unknown)"
      runtime=$( [ -n "$first_bin" ] && ldd "$first_bin" 2>/dev/null | awk '/libcudart|libcublasLt/ {print $3}' |
                   xargs -r readlink -f | xargs -r -n1 basename | paste -sd ' ')
      echo "cuda runtime loaded by the tests: ${runtime:-unknown}"
      echo "cuda toolkit here (nvcc): $( [ -n "$nvcc" ] && "$nvcc" --version | grep release || echo none)"
      echo "cuda toolkit the tests were built with: $(paste -sd ' ' "$bundle/toolkit.txt" 2>/dev/null || echo unknown)"
    } > "$out/device.txt"
    tee -a "$summary" < "$out/device.txt"
    status=0
    failed=""
    skipped_total=0
    skipped_names=""
    # Records one binary's outcome: its rc and the tests its log reports as skipped.
    note() {  # name rc log
      [ "$2" -eq 0 ] || { status=1; failed="$failed $1"; }
      local skipped
      skipped=$(skipped_in "$3")
      [ -n "$skipped" ] || return 0
      skipped_total=$((skipped_total + $(wc -l <<< "$skipped")))
      skipped_names="$skipped_names$skipped"$'\n'
      say "  skipped in $1: $(head -5 <<< "$skipped" | paste -sd ' ')$( [ "$(wc -l <<< "$skipped")" -gt 5 ] && echo ' ...')"
      say "  first reason: $(grep -m1 -A1 ': Skipped$' "$3" | tail -1)"
    }
    for bin in "$bundle"/bin/cuda_*_test; do
      name=$(basename "$bin")
      timeout 300 "$bin" --gtest_output="json:$out/$name.json" > "$out/$name.log" 2>&1
      rc=$?
      say "$name rc=$rc $(grep -E '^\[  (PASSED|FAILED|SKIPPED) +\] [0-9]+ tests?[,.]' "$out/$name.log" | tr '\n' ' ')"
      grep -E '^\[  FAILED  \]' "$out/$name.log" | head -20
      note "$name" $rc "$out/$name.log"
    done
    if [ -x "$bundle/bin/nccl_communicator_test" ]; then
      timeout 120 mpirun -np 2 --oversubscribe "$bundle/bin/nccl_communicator_test" \
        > "$out/nccl_communicator_test.log" 2>&1
      rc=$?
      say "nccl_communicator_test (2 ranks, 1 GPU) rc=$rc"
      tail -5 "$out/nccl_communicator_test.log"
      note nccl_communicator_test $rc "$out/nccl_communicator_test.log"
    fi
    # pipetrain itself under mpirun: the tiny spec in 2 pipeline stages on the
    # one GPU (the ranks share it), 20 steps with dropout, f32 and bf16, each
    # loss against the same step of a CPU run (same data, seed and masks).
    # Tolerances as in cuda_train_test: 1e-3 of the loss in f32, 3e-2 in bf16.
    if [ -x "$bundle/bin/pipetrain" ] && [ -f "$bundle/tiny.pbtxt" ]; then
      train_tiny() {  # name device dtype
        timeout 300 mpirun -np 2 --oversubscribe -x OMP_NUM_THREADS=1 -x LD_LIBRARY_PATH \
          "$bundle/bin/pipetrain" train --spec "$bundle/tiny.pbtxt" --steps 20 \
          --set train.pipeline.stages=2 --set train.microbatches=2 --set log_interval=1 \
          --set model.residual_dropout=0.1 --set model.attention_dropout=0.1 \
          --set model.activation_dropout=0.1 --set "train.device=$2" --set "train.dtype=$3" \
          --set "output_dir=/tmp/pipetrain-gpu-check/$1" > "$out/train_$1.log" 2>&1
      }
      # "step N/20 loss=X", rank 0's lines, one loss a line in step order.
      losses() { sed -nE 's|.*\[train\] step [0-9]+/20 loss=([0-9.eE+-]+).*|\1|p' "$1"; }
      train_tiny cpu cpu f32
      rc=$?
      say "pipetrain 2 ranks cpu f32 (reference) rc=$rc, $(losses "$out/train_cpu.log" | wc -l) steps"
      note pipetrain_cpu $rc "$out/train_cpu.log"
      [ -n "$gpu" ] || say "pipetrain 2 ranks on cuda: not run, no GPU here"
      for run in ${gpu:+"cuda_f32 f32 1e-3" "cuda_bf16 bf16 3e-2"}; do
        read -r name dtype tol <<< "$run"
        train_tiny "$name" cuda "$dtype"
        rc=$?
        verdict=$(paste <(losses "$out/train_cpu.log") <(losses "$out/train_$name.log") | awk -v tol="$tol" '
          { d = $1 - $2; if (d < 0) d = -d; r = d / $1; if (r > worst) worst = r; if (r > tol) bad++; n++ }
          END { printf "%d steps, worst |loss - cpu| / cpu %.2e (tolerance %s), %d over", n, worst, tol, bad
                exit (n == 20 && bad == 0) ? 0 : 1 }')
        # A run that exits 0 with a curve off the CPU's fails too.
        [ $? -eq 0 ] || [ "$rc" -ne 0 ] || rc=1
        say "pipetrain 2 ranks $name rc=$rc: $verdict"
        [ $rc -eq 0 ] || tail -3 "$out/train_$name.log"
        note "pipetrain_$name" $rc "$out/train_$name.log"
      done
    fi
    if [ -x "$bundle/bin/gpu_layer_bench" ]; then
      # The issue's two shapes, as layer stacks (encoder + decoder layers).
      for args in "--layers 12 --d 1024 --ffn 4096 --heads 16" "--layers 12 --d 1024 --ffn 4096 --heads 16 --decoder" \
                  "--layers 100 --d 512 --ffn 2048 --heads 8" "--layers 100 --d 512 --ffn 2048 --heads 8 --decoder"; do
        # shellcheck disable=SC2086
        timeout 120 "$bundle/bin/gpu_layer_bench" $args --seq 128 --batch 64 2>&1 | tee -a "$out/bench.jsonl"
      done
    fi
    # pipetrain's trainer (train.device=cuda, bf16) beside PyTorch eager and --compile.
    if [ -x "$bundle/bin/cpu_train_bench" ] && [ -f "$bundle/torch_deepnorm.py" ] && [ "${GPU_CHECK_BENCH:-0}" = 1 ]; then
      for shape in base deep-thin; do
        timeout 300 bash "$bundle/run_gpu_bench.sh" "$bundle/bin" "$bundle/torch_deepnorm.py" --shape $shape 2>&1 | tail -1
      done
    fi
    # The verdict comes last, so that it is the output's last line.
    if [ -n "$gpu" ] && [ "$skipped_total" -gt 0 ]; then
      status=1
      say "gpu_check: FAIL: $skipped_total GPU test(s) SKIPPED on a machine with a GPU ($gpu):" \
          "$(grep . <<< "$skipped_names" | head -10 | paste -sd ' ')$( [ "$skipped_total" -gt 10 ] && echo ' ...')${failed:+; failed:$failed}"
    elif [ -n "$failed" ]; then
      say "gpu_check: FAIL: failed:$failed"
    elif [ -z "$gpu" ]; then
      say "gpu_check: no GPU here (nvidia-smi -L lists none): $skipped_total test(s) skipped, as expected; nothing was checked on a GPU"
    else
      say "gpu_check: PASS: every GPU test ran and passed on $gpu"
    fi
    exit $status
    ;;
  *)
    echo "usage: $0 pack [BUILD_DIR] | run" >&2
    exit 2
    ;;
esac
