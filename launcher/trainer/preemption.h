// Surviving preemption. Schedulers warn a job before they kill it: Slurm
// sends SIGTERM (then SIGKILL after its KillWait), or the signal a job asked
// for with `sbatch --signal=USR1@120`. pipetrain catches SIGTERM, SIGINT and
// SIGUSR1, finishes the step in progress, writes a checkpoint and exits with
// kExitPreempted, so a batch script can requeue the job; the requeued job
// resumes from that checkpoint (train.output_dir) bit for bit.
#ifndef PIPETRAIN_LAUNCHER_TRAINER_PREEMPTION_H_
#define PIPETRAIN_LAUNCHER_TRAINER_PREEMPTION_H_

#include <cstdint>
#include <string>

namespace pipetrain {

// EX_TEMPFAIL: stopped early on purpose; run the same command again.
inline constexpr int kExitPreempted = 75;

// Installs the handlers; call once, before training starts.
void InstallPreemptionHandlers();
// The signal received, or 0.
int PreemptionSignal();
// Set by the step loop when every rank agreed to stop for a signal (received
// by this rank or another) and the checkpoint is written.
void MarkStoppedForPreemption();
bool StoppedForPreemption();

// The launcher cannot always pass exit status 75 on: mpirun answers SIGTERM
// or SIGINT by exiting 1 even when every rank saved and stopped cleanly. So
// the ranks also say it in a file: when PIPETRAIN_STOP_MARKER names one,
// the printing rank writes there, after the checkpoint is complete,
// "preempted step=N checkpoint=DIR". A batch script removes the file before
// starting the job and requeues when it exists afterwards (or the status is
// 75): deploy/slurm/requeue_decision.sh. Failing to write it is a warning.
inline constexpr char kStopMarkerVariable[] = "PIPETRAIN_STOP_MARKER";
void WriteStopMarker(int64_t step, const std::string& checkpoint_dir);

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_TRAINER_PREEMPTION_H_
