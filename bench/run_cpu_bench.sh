#!/usr/bin/env bash
# Runs the CPU training benchmark (cpu_train_bench) and, where Debian's
# python3-torch is installed, the PyTorch peer (bench/torch_peer.py) with the
# same model, shapes, optimizer settings and thread count; prints each run's
# JSON line, then one JSON line with both and the pipetrain/torch ratios.
# Builds nothing: point it at a build directory that has cpu_train_bench.
#
#   bench/run_cpu_bench.sh [BUILD_DIR] [--shape base|deep-thin] [--threads T]
#       [--seq N] [--batch B] [--warmup W] [--steps S] [--phase_steps N]
#       [--spec FILE] [--set field=value]... [--peer-blas same|system] [--no-peer]
#
# Shapes (encoder-decoder DeepNorm, vocab 8000, seq 32, batch 16, 2 threads):
#   base       6+6 layers,  d=512, ffn 2048, 8 heads   (the default)
#   deep-thin  48+48 layers, d=128, ffn 512,  4 heads
# --spec replaces the generated spec; the peer then takes its shapes and
# hyper-parameters from the bench's JSON line (DEEPNORM encoder-decoder only).
# --peer-blas same (default) runs the peer on the OpenBLAS build pipetrain
# loaded (Debian's OpenMP build, via LD_LIBRARY_PATH), so both use the same
# GEMM code and one OpenMP pool; system leaves torch on libblas.so.3.
# OMP_WAIT_POLICY and other environment variables reach both runs as set.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build=./build
shape=base
threads=2
seq=32
batch=16
warmup=2
steps=5
phase_steps=0
spec=""
peer=1
peer_blas=same
sets=()

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }
die() { echo "run_cpu_bench.sh: $*" >&2; exit 2; }

while (($#)); do
  case "$1" in
    --shape) shape="${2:?--shape needs a value}"; shift 2 ;;
    --threads) threads="${2:?}"; shift 2 ;;
    --seq) seq="${2:?}"; shift 2 ;;
    --batch) batch="${2:?}"; shift 2 ;;
    --warmup) warmup="${2:?}"; shift 2 ;;
    --steps) steps="${2:?}"; shift 2 ;;
    --phase_steps) phase_steps="${2:?}"; shift 2 ;;
    --spec) spec="${2:?}"; shift 2 ;;
    --set) sets+=(--set "${2:?}"); shift 2 ;;
    --peer-blas) peer_blas="${2:?}"; shift 2 ;;
    --no-peer) peer=0; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) build="$1"; shift ;;
  esac
done

bench_bin="$build/bench/cpu_train_bench"
[[ -x "$bench_bin" ]] || die "no $bench_bin; build it first: cmake --build $build --target cpu_train_bench"

case "$shape" in
  base) enc=6; dec=6; d=512; ffn=2048; heads=8 ;;
  deep-thin) enc=48; dec=48; d=128; ffn=512; heads=4 ;;
  *) die "unknown --shape $shape (base or deep-thin)" ;;
esac
vocab=8000

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if [[ -z "$spec" ]]; then
  spec="$tmp/bench_${shape}.pbtxt"
  # tokens_per_batch, the synthetic lengths and steps are set by the bench itself.
  cat >"$spec" <<EOF
model {
  name: "bench-${shape}"
  kind: ENCODER_DECODER
  vocab_size: ${vocab}
  d_model: ${d}
  ffn_dim: ${ffn}
  heads: ${heads}
  encoder_layers: ${enc}
  decoder_layers: ${dec}
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
}
EOF
fi

# Other processes on a 2-core machine distort every figure; record the load.
load_before="$(cut -d' ' -f1 /proc/loadavg)"

"$bench_bin" --spec "$spec" "${sets[@]}" --seq "$seq" --batch "$batch" --warmup "$warmup" \
  --steps "$steps" --threads "$threads" --phase_steps "$phase_steps" >"$tmp/pipetrain.json"
cat "$tmp/pipetrain.json"

peer_json=""
if ((peer)) && /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  # Shapes and hyper-parameters as the bench resolved them.
  mapfile -t peer_args < <(/usr/bin/python3 - "$tmp/pipetrain.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
if r["kind"] != "ENCODER_DECODER" or r["norm"] != "DEEPNORM":
    sys.exit(f"the torch peer models DEEPNORM encoder-decoders, not {r['kind']} {r['norm']}")
for key in ("enc", "dec", "d", "ffn", "heads", "vocab", "seq", "batch", "warmup", "steps",
            "threads", "label_smoothing", "lr", "lr_schedule", "warmup_steps", "beta1", "beta2",
            "adam_eps", "weight_decay", "clip_norm", "layer_norm_eps"):
    print(f"--{key}={r[key]}")
EOF
  )
  phases=()
  ((phase_steps > 0)) && phases=(--phases)
  peer_env=()
  openmp_blas=/usr/lib/x86_64-linux-gnu/openblas-openmp
  if [[ "$peer_blas" == same ]] && grep -q '"blas":"OpenBLAS openmp' "$tmp/pipetrain.json" &&
     [[ -e "$openmp_blas/libblas.so.3" ]]; then
    peer_env=(LD_LIBRARY_PATH="$openmp_blas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
  elif [[ "$peer_blas" != same && "$peer_blas" != system ]]; then
    die "unknown --peer-blas $peer_blas (same or system)"
  fi
  env "${peer_env[@]}" /usr/bin/python3 "$here/torch_peer.py" "${peer_args[@]}" "${phases[@]}" \
    >"$tmp/torch.json"
  cat "$tmp/torch.json"
  peer_json="$tmp/torch.json"
elif ((peer)); then
  echo "run_cpu_bench.sh: /usr/bin/python3 cannot import torch; no peer run (apt install python3-torch)" >&2
fi
load_after="$(cut -d' ' -f1 /proc/loadavg)"

label="$shape"
[[ "$spec" == "$tmp/"* ]] || label="custom"
python3 - "$tmp/pipetrain.json" "$peer_json" "$label" "$load_before" "$load_after" \
  "$(date -u +%Y-%m-%dT%H:%MZ)" <<'EOF'
import json, sys
mine = json.load(open(sys.argv[1]))
peer = json.load(open(sys.argv[2])) if sys.argv[2] else None
out = {"bench": "cpu_train_compare", "shape": sys.argv[3], "date": sys.argv[6],
       "loadavg_1m_before": float(sys.argv[4]), "loadavg_1m_after": float(sys.argv[5]),
       "pipetrain": mine, "torch": peer}
if peer:
    out["ratio_tgt_tokens_per_s"] = round(mine["tgt_tokens_per_s"] / peer["tgt_tokens_per_s"], 3)
    out["ratio_peak_rss"] = round(mine["peak_rss_gib"] / peer["peak_rss_gib"], 3)
print(json.dumps(out, separators=(",", ":")))
EOF
