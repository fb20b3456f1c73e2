#!/usr/bin/env bash
# Two hosts for real, on one machine: a 2-stage pipeline job over TCP between
# two network namespaces, checked against the one-process run.
#
#   sudo deploy/two_host_check.sh --binary build/launcher/pipetrain [-- extra pipetrain args]
#
# What it does:
#   1. creates two network namespaces (the "hosts") joined by a veth pair,
#      10.77.0.1/24 and 10.77.0.2/24, each with its loopback up. The veth is
#      created inside the first namespace and its peer moved straight to the
#      second, so nothing is ever added to the machine's own network;
#   2. runs `pipetrain train --spec configs/tiny.pbtxt` as one process (inside
#      the first namespace) for the reference params_digest;
#   3. runs `mpirun` inside the first namespace with a hostfile naming the two
#      addresses (slots=1 each) and `pipetrain train --spec configs/tiny.pbtxt
#      --set pipeline.stages=2`. Open MPI reaches the second "host" through
#      plm_rsh_agent = a generated script that stands in for ssh: it gets
#      `HOST command...` and runs the command under `ip netns exec` in that
#      host's namespace (no sshd). The runtime (oob) and the data (btl tcp,
#      shared memory excluded) are both restricted to the veth subnet;
#   4. proves it: each rank records `readlink /proc/self/ns/net` before it
#      execs pipetrain, which must be the inode of its own namespace (rank 0:
#      A, rank 1: B, neither the caller's); the veth's rx/tx byte counters
#      before and after must have moved by at least --min-bytes each way; and
#      the pipeline's final params_digest must equal the one-process digest.
#
# Bounded and self-cleaning: the whole script re-runs itself under
# `timeout` (--time-limit, default 300 s); each run inside has its own, shorter
# limit; an EXIT/INT/TERM/HUP trap kills every process still inside the two
# namespaces and deletes them (the veth goes with them). Names carry the
# script's pid and a random suffix, so parallel runs do not collide (the
# subnets are private to each pair of namespaces).
#
# Exit status: 0 passed; 1 failed (the reason on the last line); 77 skipped,
# `SKIP: <reason>` (not root, no `ip`, no mpirun, or creating a network
# namespace is not permitted here, e.g. a container without CAP_SYS_ADMIN);
# 124 the time limit.
#
# Options:
#   --binary PATH      the pipetrain binary (default: $PIPETRAIN_BINARY, else
#                      build/launcher/pipetrain under the checkout)
#   --mpirun PATH      Open MPI's mpirun (default: mpirun on PATH)
#   --spec PATH        default configs/tiny.pbtxt (relative to the checkout)
#   --time-limit S     the whole script's limit in seconds (default 300)
#   --min-bytes N      the least each way over the veth (default 1000000)
#   --workdir DIR      keep the outputs and logs here (default: a mktemp dir,
#                      removed on success and kept on failure)
#   -- ARGS...         appended to both pipetrain runs, e.g. `-- --steps 50`
set -uo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
SOURCE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

binary="${PIPETRAIN_BINARY:-$SOURCE_DIR/build/launcher/pipetrain}"
mpirun_bin="mpirun"
spec="configs/tiny.pbtxt"
time_limit=300
min_bytes=1000000
workdir=""
extra=()
orig_args=("$@")
while [[ $# -gt 0 ]]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --mpirun) mpirun_bin="$2"; shift 2 ;;
    --spec) spec="$2"; shift 2 ;;
    --time-limit) time_limit="$2"; shift 2 ;;
    --min-bytes) min_bytes="$2"; shift 2 ;;
    --workdir) workdir="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,/^set -uo/p' "$SELF" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "two_host_check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

status_ok=0
skip() { echo "SKIP: $*"; status_ok=1; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

# The whole script is bounded: re-run under timeout once (SIGTERM at the
# limit, which the trap below turns into a cleanup; SIGKILL 20 s later).
if [[ -z "${TWO_HOST_CHECK_BOUNDED:-}" ]]; then
  export TWO_HOST_CHECK_BOUNDED=1
  exec timeout --kill-after=20 "$time_limit" "$SELF" "${orig_args[@]}"
fi

# --- Preconditions: each a SKIP with its reason, never a pass. -------------
[[ "$(id -u)" == 0 ]] || skip "network namespaces need root (running as uid $(id -u))"
command -v ip > /dev/null || skip "the 'ip' command (iproute2) is not installed"
command -v "$mpirun_bin" > /dev/null || skip "no mpirun ('$mpirun_bin')"
"$mpirun_bin" --version 2>&1 | grep -Eq "Open MPI|OpenRTE" ||
  skip "'$mpirun_bin' is not Open MPI (the rsh-agent trick is Open MPI's)"
[[ -x "$binary" ]] || fail "pipetrain binary '$binary' not found or not executable"
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"

tag="$$$(printf '%04x' $((RANDOM)))"
NS_A="pt2h_a_$tag"
NS_B="pt2h_b_$tag"
IP_A=10.77.0.1
IP_B=10.77.0.2
SUBNET=10.77.0.0/24
DEV_A=pt2h0  # interface names live inside the namespaces: no collisions
DEV_B=pt2h1

keep_workdir=1
if [[ -z "$workdir" ]]; then
  workdir="$(mktemp -d "${TMPDIR:-/tmp}/two_host_check.XXXXXX")"
  keep_workdir=0
fi
mkdir -p "$workdir" || fail "cannot create $workdir"
workdir="$(cd "$workdir" && pwd)"
created=()

cleanup() {
  local rc=$?
  # Ignored (not reset) while cleaning up: a second signal, e.g. the copy that
  # timeout sends to the whole process group, must not cut the cleanup short.
  trap '' INT TERM HUP
  trap - EXIT
  for ns in "${created[@]}"; do
    # Every process still inside our namespace is ours (mpirun, orted, ranks).
    local pids
    pids="$(ip netns pids "$ns" 2> /dev/null | tr '\n' ' ')"
    if [[ -n "${pids// /}" ]]; then
      echo "two_host_check: killing leftovers in $ns: $pids"
      kill -TERM $pids 2> /dev/null
      sleep 1
      pids="$(ip netns pids "$ns" 2> /dev/null | tr '\n' ' ')"
      [[ -n "${pids// /}" ]] && kill -KILL $pids 2> /dev/null
    fi
    ip netns del "$ns" 2> /dev/null || true
  done
  for ns in "${created[@]}"; do
    if ip netns list 2> /dev/null | grep -qw "$ns"; then
      echo "two_host_check: WARNING: namespace $ns still exists"
    fi
  done
  if [[ $status_ok == 1 && $keep_workdir == 0 ]]; then
    rm -rf "$workdir"
  else
    echo "two_host_check: outputs and logs kept in $workdir"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'echo "two_host_check: interrupted (SIGINT)"; exit 130' INT
trap 'echo "two_host_check: terminated (SIGTERM, e.g. the time limit)"; exit 124' TERM
trap 'echo "two_host_check: hangup"; exit 129' HUP

# --- The two hosts. ----------------------------------------------------------
if ! err="$(ip netns add "$NS_A" 2>&1)"; then
  skip "cannot create a network namespace here ($err); needs CAP_SYS_ADMIN"
fi
created+=("$NS_A")
ip netns add "$NS_B" || fail "ip netns add $NS_B"
created+=("$NS_B")
ip -n "$NS_A" link add "$DEV_A" type veth peer name "$DEV_B" netns "$NS_B" ||
  fail "cannot create the veth pair inside the namespaces"
ip -n "$NS_A" addr add "$IP_A/24" dev "$DEV_A" || fail "address $IP_A"
ip -n "$NS_B" addr add "$IP_B/24" dev "$DEV_B" || fail "address $IP_B"
for ns in "$NS_A" "$NS_B"; do
  ip -n "$ns" link set lo up || fail "lo up in $ns"
done
ip -n "$NS_A" link set "$DEV_A" up || fail "$DEV_A up"
ip -n "$NS_B" link set "$DEV_B" up || fail "$DEV_B up"
if command -v ping > /dev/null; then
  ip netns exec "$NS_A" ping -c 1 -W 2 "$IP_B" > /dev/null 2>&1 ||
    ip netns exec "$NS_A" ping -c 1 -W 2 "$IP_B" > /dev/null 2>&1 ||
    fail "no ping reply from $IP_B over the veth"
fi

ns_inode() { stat -L -c %i "/var/run/netns/$1"; }
INODE_A="$(ns_inode "$NS_A")"
INODE_B="$(ns_inode "$NS_B")"
INODE_HOST="$(readlink /proc/self/ns/net)"
echo "two_host_check: hosts $NS_A ($IP_A, net:[$INODE_A]) and $NS_B ($IP_B, net:[$INODE_B]);" \
  "the caller is in $INODE_HOST"

# Byte counters of each end, read inside its namespace.
counter() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"; }

# --- The ssh stand-in and the hostfile. -------------------------------------
agent="$workdir/netns_rsh.sh"
cat > "$agent" << EOF
#!/usr/bin/env bash
# Open MPI's plm_rsh_agent for two_host_check.sh: called as ssh would be,
# [options] HOST command..., it runs the command in HOST's network namespace.
while [[ \$# -gt 0 && "\$1" == -* ]]; do shift; done
host="\$1"; shift
case "\$host" in
  $IP_A) ns=$NS_A ;;
  $IP_B) ns=$NS_B ;;
  *) echo "netns_rsh: unknown host '\$host'" >&2; exit 255 ;;
esac
echo "netns_rsh: \$host -> ip netns exec \$ns" >&2
exec ip netns exec "\$ns" /bin/sh -c "\$*"
EOF
chmod +x "$agent"
printf '%s slots=1\n%s slots=1\n' "$IP_A" "$IP_B" > "$workdir/hostfile"

# Each rank records its network namespace, then becomes pipetrain.
rank_wrapper="$workdir/rank.sh"
cat > "$rank_wrapper" << EOF
#!/bin/sh
echo "rank \${OMPI_COMM_WORLD_RANK:-?} pid \$\$ \$(readlink /proc/self/ns/net)" \
  > "$workdir/rank\${OMPI_COMM_WORLD_RANK:-x}.netns"
exec "\$@"
EOF
chmod +x "$rank_wrapper"

export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Each run gets most of what is left, so the trap always has time.
run_limit=$(((time_limit - 30) / 2))
((run_limit >= 30)) || run_limit=30

cd "$SOURCE_DIR" || fail "cd $SOURCE_DIR"

# Runs `command...` inside namespace NS under its own time limit, output to
# LOG. In the background with `wait`, so that a signal's trap runs at once
# rather than after the command.
in_ns_bounded() {
  local log="$1" ns="$2"
  shift 2
  ip netns exec "$ns" timeout -k 5 "$run_limit" "$@" > "$log" 2>&1 < /dev/null &
  wait $!
}
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# --- One process: the reference digest. --------------------------------------
echo "two_host_check: one process: pipetrain train --spec $spec ${extra[*]}"
t0=$(date +%s.%N)
in_ns_bounded "$workdir/one.log" "$NS_A" "$binary" train --spec "$spec" \
  --set output_dir="$workdir/one" "${extra[@]}"
rc=$?
t1=$(date +%s.%N)
[[ $rc == 0 ]] || { tail -20 "$workdir/one.log"; fail "the one-process run exited $rc"; }
one_digest="$(grep -o 'params_digest=[0-9a-f]*' "$workdir/one.log" | tail -1 | cut -d= -f2)"
[[ ${#one_digest} == 16 ]] || { tail -5 "$workdir/one.log"; fail "no params_digest from the one-process run"; }
grep '^final:\|final: ' "$workdir/one.log" | tail -1
echo "two_host_check: one process took $(elapsed "$t0" "$t1") s"

# --- Two hosts. -------------------------------------------------------------
tx_a0=$(counter "$NS_A" "$DEV_A" tx_bytes); rx_a0=$(counter "$NS_A" "$DEV_A" rx_bytes)
tx_b0=$(counter "$NS_B" "$DEV_B" tx_bytes); rx_b0=$(counter "$NS_B" "$DEV_B" rx_bytes)
echo "two_host_check: before: $DEV_A tx=$tx_a0 rx=$rx_a0, $DEV_B tx=$tx_b0 rx=$rx_b0"
echo "two_host_check: two hosts: mpirun -np 2 (hostfile $IP_A, $IP_B) pipetrain train" \
  "--spec $spec --set pipeline.stages=2 ${extra[*]}"
t0=$(date +%s.%N)
in_ns_bounded "$workdir/two.log" "$NS_A" "$mpirun_bin" -np 2 \
  --hostfile "$workdir/hostfile" --map-by node \
  --mca plm_rsh_agent "$agent" \
  --mca btl tcp,self --mca btl_tcp_if_include "$SUBNET" \
  --mca oob_tcp_if_include "$SUBNET" \
  -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS \
  "$rank_wrapper" "$binary" train --spec "$spec" --set pipeline.stages=2 \
  --set output_dir="$workdir/two" "${extra[@]}"
rc=$?
t1=$(date +%s.%N)
[[ $rc == 0 ]] || { tail -30 "$workdir/two.log"; fail "the two-host run exited $rc"; }
tx_a1=$(counter "$NS_A" "$DEV_A" tx_bytes); rx_a1=$(counter "$NS_A" "$DEV_A" rx_bytes)
tx_b1=$(counter "$NS_B" "$DEV_B" tx_bytes); rx_b1=$(counter "$NS_B" "$DEV_B" rx_bytes)
echo "two_host_check: after:  $DEV_A tx=$tx_a1 rx=$rx_a1, $DEV_B tx=$tx_b1 rx=$rx_b1"
grep 'netns_rsh:\|stages x' "$workdir/two.log" | head -5
two_digest="$(grep -o 'params_digest=[0-9a-f]*' "$workdir/two.log" | tail -1 | cut -d= -f2)"
grep '^final:\|final: ' "$workdir/two.log" | tail -1
echo "two_host_check: two hosts took $(elapsed "$t0" "$t1") s"

# --- The proofs. -------------------------------------------------------------
for r in 0 1; do
  [[ -s "$workdir/rank$r.netns" ]] || fail "rank $r did not record its namespace"
  echo "two_host_check: $(cat "$workdir/rank$r.netns")"
done
grep -q "net:\[$INODE_A\]" "$workdir/rank0.netns" || fail "rank 0 did not run in $NS_A"
grep -q "net:\[$INODE_B\]" "$workdir/rank1.netns" || fail "rank 1 did not run in $NS_B"
[[ "$INODE_A" != "$INODE_B" ]] || fail "the two namespaces are one"

a_sent=$((tx_a1 - tx_a0)); b_sent=$((tx_b1 - tx_b0))
echo "two_host_check: over the veth: $NS_A -> $NS_B $a_sent bytes, $NS_B -> $NS_A $b_sent bytes"
((a_sent >= min_bytes)) || fail "only $a_sent bytes went $NS_A -> $NS_B (want >= $min_bytes)"
((b_sent >= min_bytes)) || fail "only $b_sent bytes went $NS_B -> $NS_A (want >= $min_bytes)"
# A veth delivers what one end sends to the other.
(((rx_b1 - rx_b0) == a_sent && (rx_a1 - rx_a0) == b_sent)) ||
  echo "two_host_check: note: rx and tx counters differ (a dropped packet?)"

[[ ${#two_digest} == 16 ]] || { tail -5 "$workdir/two.log"; fail "no params_digest from the two-host run"; }
[[ "$two_digest" == "$one_digest" ]] ||
  fail "params_digest differs: two hosts $two_digest, one process $one_digest"
status_ok=1
echo "PASS: two hosts (ranks in $NS_A and $NS_B, $a_sent/$b_sent bytes over the veth)" \
  "params_digest=$two_digest equals the one-process run"
