#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in their own build
# directory and runs each one from its committed seed corpus for a bounded
# number of inputs. Any crash, sanitizer report, leak, timeout or
# out-of-memory fails the script; the input that caused it is left in
# $work/crashes/ and named in the log.
#   bash fuzz/run_fuzzers.sh                       # CI: 2000 inputs per target
#   FUZZ_RUNS=-1 FUZZ_SECONDS=60 bash fuzz/run_fuzzers.sh   # a minute each
# Variables: BUILD_DIR (build-fuzz), FUZZ_JOBS (build parallelism, nproc),
# FUZZ_RUNS (inputs per target, -1: no limit), FUZZ_SECONDS (time cap per
# target), FUZZ_TARGETS (a subset, space-separated).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${BUILD_DIR:-build-fuzz}
runs=${FUZZ_RUNS:-2000}
seconds=${FUZZ_SECONDS:-20}
targets=${FUZZ_TARGETS:-spec checkpoint_manifest token_shards mo sentencepiece tsv_corpus}

cxx=${FUZZ_CXX:-$(command -v clang++-14 || command -v clang++ || true)}
cc=${FUZZ_CC:-$(command -v clang-14 || command -v clang || true)}
if [ -z "$cxx" ] || [ -z "$cc" ]; then
  echo "[fuzz] clang not found: apt-get install clang-14 libclang-rt-14-dev libomp-14-dev" >&2
  exit 1
fi
CC=$cc CXX=$cxx cmake -S . -B "$build" -DPIPETRAIN_FUZZ=ON -DPIPETRAIN_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target fuzzers -j"${FUZZ_JOBS:-$(nproc)}"

work=$(mktemp -d "${TMPDIR:-/tmp}/pipetrain-fuzz-run-XXXXXX")
mkdir -p "$work/crashes"
failed=()
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# A leak is a bug too; abort_on_error makes a UBSan finding a crash.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for t in $targets; do
  exe=$build/fuzz/${t}_fuzzer
  # New inputs go to a scratch directory, never into the committed seeds.
  mkdir -p "$work/$t"
  start=$(date +%s)
  set +e
  "$exe" -runs="$runs" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/crashes/${t}-" \
    "$work/$t" "$root/fuzz/corpus/$t" >"$work/$t.log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log" | tail -1)
  echo "[fuzz] $t: rc=$rc executions=${execs:-?} in $(($(date +%s) - start))s"
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$work/$t.log" | head -20 >&2 || true
    tail -40 "$work/$t.log" >&2
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "[fuzz] FAILED: ${failed[*]}; inputs and logs in $work" >&2
  exit 1
fi
rm -rf "$work"
echo "[fuzz] all targets passed"
