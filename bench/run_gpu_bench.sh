#!/usr/bin/env bash
# GPU training benchmark beside the PyTorch peer, in one run on the GPU
# machine: pipetrain (cpu_train_bench with train.device=cuda, bf16) and
# peers/torch_deepnorm.py (bf16, fused AdamW) in eager and --compile mode, the
# same DeepNorm encoder-decoder and shapes; prints each run's JSON line and a
# last line with the ratios. Writes the lines to $OUT/gpu_bench.jsonl too.
#
#   bench/run_gpu_bench.sh BIN_DIR PEER_SCRIPT [--shape base|deep-thin] [--steps S]
#
# Shapes (the issue's targets):
#   base       12+12 layers, d=1024, ffn 4096, 16 heads, vocab 64000, seq 128, batch 64
#   deep-thin  100+100 layers, d=512, ffn 2048, 8 heads, vocab 64000, seq 128, batch 64
# MFU is against the H100's 989 dense bf16 TFLOP/s; model FLOPs are the
# peer's count (same model), scaled by throughput.
set -euo pipefail
bin_dir=${1:?BIN_DIR with cpu_train_bench}
peer=${2:?path of torch_deepnorm.py}
shift 2
shape=base
steps=20
while (($#)); do
  case "$1" in
    --shape) shape=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    *) echo "run_gpu_bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$shape" in
  base) enc=12 dec=12 d=1024 ffn=4096 heads=16 ;;
  deep-thin) enc=100 dec=100 d=512 ffn=2048 heads=8 ;;
  *) echo "run_gpu_bench.sh: unknown shape $shape" >&2; exit 2 ;;
esac
vocab=64000 seq=128 batch=64 warmup=5
out=${OUT:-.}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/spec.pbtxt" <<SPEC
model {
  name: "gpu-bench-${shape}"
  kind: ENCODER_DECODER
  vocab_size: ${vocab}
  d_model: ${d}
  ffn_dim: ${ffn}
  heads: ${heads}
  encoder_layers: ${enc}
  decoder_layers: ${dec}
  max_positions: 256
  norm: DEEPNORM
  label_smoothing: 0.1
}
train {
  lr: 0.0005
  warmup_steps: 4000
  adamw { beta1: 0.9 beta2: 0.98 epsilon: 1e-8 weight_decay: 0.0001 }
  clip_norm: 1.0
  seed: 1
  steps: 1
  tokens_per_batch: 4096
  device: "cuda"
  dtype: "bf16"
}
SPEC
"$bin_dir/cpu_train_bench" --spec "$tmp/spec.pbtxt" --seq $seq --batch $batch --warmup $warmup \
  --steps "$steps" --threads 1 | tee "$tmp/pipetrain.json" | tee -a "$out/gpu_bench.jsonl"
peer_args="--enc $enc --dec $dec --d $d --ffn $ffn --heads $heads --vocab $vocab --seq $seq --batch $batch --steps $steps --warmup $warmup"
# shellcheck disable=SC2086
python3 "$peer" $peer_args | tail -1 | tee "$tmp/eager.json" | tee -a "$out/gpu_bench.jsonl"
# shellcheck disable=SC2086
python3 "$peer" $peer_args --compile | tail -1 | tee "$tmp/compile.json" | tee -a "$out/gpu_bench.jsonl"
python3 - "$tmp/pipetrain.json" "$tmp/eager.json" "$tmp/compile.json" "$shape" <<'PY' | tee -a "$out/gpu_bench.jsonl"
import json, sys
p, e, c = (json.load(open(f)) for f in sys.argv[1:4])
def tps(r):  # target tokens per second (fairseq's wps), the key both lines use
    return r["tgt_tokens_per_s"]
# Same model and shapes: the peer's model-FLOP count per target token holds
# for pipetrain too, so TFLOP/s scale with throughput.
flops_per_tgt_token = e["tflops"] * 1e12 / tps(e)
tflops = tps(p) * flops_per_tgt_token / 1e12
print(json.dumps({"bench": "gpu_train_vs_torch", "shape": sys.argv[4],
                  "pipetrain_tgt_tokens_per_s": tps(p), "torch_eager_tgt_tokens_per_s": tps(e),
                  "torch_compile_tgt_tokens_per_s": tps(c),
                  "vs_eager": tps(p) / tps(e), "vs_compile": tps(p) / tps(c),
                  "pipetrain_model_tflops": tflops, "pipetrain_mfu": tflops / 989.0,
                  "pipetrain_peak_gpu_mib": p.get("peak_gpu_mib"),
                  "torch_eager_peak_gib": e.get("peak_gib"),
                  "torch_compile_peak_gib": c.get("peak_gib")}))
PY
