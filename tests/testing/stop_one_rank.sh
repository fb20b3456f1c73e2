#!/bin/bash
# Starts a 4-rank training under mpirun, SIGSTOPs one rank once training is
# under way, and reports how the job ended:
#   rc=<mpirun's exit status> seconds=<from the SIGSTOP to mpirun's exit>
# Usage: stop_one_rank.sh "MPIRUN ... -np" PIPETRAIN OUT_DIR TIMEOUT_S
# A guard kills everything after 90 s, so a watchdog that never fires fails
# the test instead of leaving a stopped process behind.
mpirun_np=$1 binary=$2 dir=$3 timeout_s=$4
mkdir -p "$dir"
out=$dir/out.txt
$mpirun_np 4 "$binary" train --spec configs/tiny.pbtxt --steps 1000000 \
  --set pipeline.stages=2 --set data_parallel=2 --set comm_timeout_s="$timeout_s" \
  --set output_dir="$dir/run" >"$out" 2>&1 &
launcher=$!
for _ in $(seq 600); do grep -q "step 5/" "$out" && break; sleep 0.1; done
victim=$(pgrep -P "$launcher" | sed -n 3p)
if [ -z "$victim" ]; then
  echo "no rank to stop; mpirun's children: $(pgrep -P "$launcher" | tr '\n' ' ')"
  kill "$launcher"
  exit 1
fi
kill -STOP "$victim"
start=$(date +%s.%N)
(sleep 90 && kill -9 "$victim" "$launcher") >/dev/null 2>&1 &
guard=$!
wait "$launcher"
rc=$?
end=$(date +%s.%N)
kill "$guard" 2>/dev/null
kill -9 "$victim" 2>/dev/null
echo "rc=$rc seconds=$(awk "BEGIN{print $end - $start}")"
cat "$out"
