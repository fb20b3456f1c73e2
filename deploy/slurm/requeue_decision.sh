# Sourced by the batch scripts in deploy/slurm: whether a finished job step
# should be requeued. pipetrain exits 75 when it stopped for a signal with a
# checkpoint written, but a launcher does not always pass that on (mpirun
# answers SIGTERM or SIGINT with exit status 1 after the ranks have saved).
# So the ranks also write the file named by PIPETRAIN_STOP_MARKER once the
# checkpoint is complete; the script removes it before the launch and asks
# here afterwards.
#
#   pipetrain_should_requeue STATUS MARKER_FILE
#
# Returns 0 (requeue) when STATUS is 75 or MARKER_FILE holds the ranks'
# record, printing why; 1 otherwise (0 is done; 3, training diverged, and
# 4, a rank stopped answering, need a person, not another try; any other
# status is a failure).

pipetrain_should_requeue() {
  local status=$1 marker=$2
  if [ "$status" -eq 75 ]; then
    echo "pipetrain stopped for preemption with a checkpoint (exit status 75)"
    return 0
  fi
  if [ -n "$marker" ] && [ -s "$marker" ]; then
    echo "the launcher exited with $status, but the ranks stopped for preemption with a checkpoint ($(head -c 300 "$marker"))"
    return 0
  fi
  case "$status" in
    0) echo "pipetrain finished" ;;
    3) echo "training diverged (exit status 3): not requeued; see the log for what to change" ;;
    4) echo "a rank stopped answering (exit status 4): not requeued; check that rank's node" ;;
    *) echo "pipetrain failed with exit status $status: not requeued" ;;
  esac
  return 1
}
