#!/usr/bin/env bash
# Data preparation at the flagship's scale, measured: `data build`, `data
# vocab` and `data shard` for the 87 languages of configs/m2m_200L.pbtxt (all
# 7,482 directions), then the loader's start-up time and memory per rank
# (bench/loader_bench.cc). One JSON line per stage on stdout; the tools'
# own logs go to OUT/*.log.
#
#   bash bench/run_data_bench.sh [OUT_DIR] [VOCAB_SIZE] [VOCAB_SENTENCES]
#
# Defaults: a fresh temporary directory, 8000 pieces, 300000 sentences (the
# 128k-piece vocabulary of m2m_200L takes spm_train about 2.5 minutes on
# 1,000,000 sentences; pass 128000 1000000 to measure it).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-$(mktemp -d)}"
vocab_size="${2:-8000}"
vocab_sentences="${3:-300000}"
bin=build/launcher/pipetrain
mkdir -p "$out"
# The language list of the flagship config, one code a line.
languages=$(sed -n '/languages: \[/,/\]/p' configs/m2m_200L.pbtxt | grep -o '"[A-Za-z_]*"' |
            tr -d '"' | paste -sd, -)
count=$(echo "$languages" | tr ',' '\n' | wc -l)

# Runs a stage under /usr/bin/time and prints its JSON line.
measure() {
  local stage="$1"
  shift
  local timing="$out/$stage.time"
  /usr/bin/time -f "%e %M" -o "$timing" "$@" > "$out/$stage.log" 2>&1
  read -r seconds kib < "$timing"
  printf '{"bench":"data","stage":"%s","languages":%d,"wall_s":%s,"peak_rss_mb":%.1f}\n' \
    "$stage" "$count" "$seconds" "$(echo "$kib / 1024" | bc -l)"
}

measure build "$bin" data build --from-gettext /usr/share/locale --out "$out/corpus"
measure vocab "$bin" data vocab --corpus "$out/corpus" --languages "$languages" \
  --vocab-size "$vocab_size" --vocab-sentences "$vocab_sentences" --out "$out/shards"
measure shard "$bin" data shard --corpus "$out/corpus" --languages "$languages" \
  --vocab "$out/shards/spm.model" --out "$out/shards"
build/bench/loader_bench --shards "$out/shards" --steps 2000
