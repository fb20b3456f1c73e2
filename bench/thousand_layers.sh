#!/usr/bin/env bash
# The depth study's 1,000-layer runs (docs/depth-study.md, "A thousand
# layers"): configs/deepnorm_1000L_cpu.pbtxt (500 + 500, d = 64, 4 pipeline
# stages, every layer recomputed in backward) trained under `mpirun -np 4`
# with DeepNorm, then with Post-LN at the same depth and rate. Before them it
# saves `pipetrain plan`'s per-rank prediction; each run ends with the
# measured peak memory per rank (the "host memory by rank" line).
#
#   bash bench/thousand_layers.sh [NORM...]     # default: DEEPNORM POST_LN
#
# Resumable: each run continues from its latest checkpoint (every 25 steps);
# a finished run is skipped (its log says "final:"). Environment: PIPETRAIN
# (the binary, default build/launcher/pipetrain), OUT (default runs), STEPS
# (default the spec's 300). On 2 cores the 4 ranks share them
# (--oversubscribe, one thread each): about 6 s a step for DeepNorm.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${PIPETRAIN:-build/launcher/pipetrain}
out=${OUT:-runs}
spec=configs/deepnorm_1000L_cpu.pbtxt
norms=("$@")
[[ ${#norms[@]} -gt 0 ]] || norms=(DEEPNORM POST_LN)
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# The plan takes the corpus's longest pairs (64 tokens a side) and, as train
# does, partitions with them; f32 activations on a CPU.
"$binary" plan --spec "$spec" --world 4 --dtype_bytes 4 > "$out/thousand_layers_plan.txt"
echo "[thousand_layers] plan: $out/thousand_layers_plan.txt"
grep -A6 '^memory per GPU' "$out/thousand_layers_plan.txt" || true

for norm in "${norms[@]}"; do
  name=$(echo "$norm" | tr 'A-Z' 'a-z')_1000L_cpu
  log="$out/$name.log"
  if [[ -f "$log" ]] && grep -q '^final:' "$log"; then
    echo "[thousand_layers] $name: finished before ($log)"
    continue
  fi
  args=(train --spec "$spec" --set "norm=$norm" --set "output_dir=$out/$name")
  [[ -z "${STEPS:-}" ]] || args+=(--steps "$STEPS")
  echo "[thousand_layers] $name: mpirun -np 4 $binary ${args[*]}"
  start=$(date +%s)
  status=0
  mpirun --oversubscribe -np 4 -x OMP_NUM_THREADS=1 -x OMP_WAIT_POLICY=passive \
    "$binary" "${args[@]}" >> "$log" 2>&1 || status=$?
  echo "[thousand_layers] $name: exit $status after $(( $(date +%s) - start )) s; $log"
  grep -E 'host memory by rank|training diverged' "$log" | tail -n 2 || true
  # 3 is divergence, an outcome; anything else but 0 stops the script.
  [[ $status -eq 0 || $status -eq 3 ]] || exit "$status"
done
