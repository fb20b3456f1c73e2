// When training has diverged. A step that is not finite is skipped (see
// StepMetrics::skipped); train.max_skipped_steps of them in a row mean the
// run cannot recover by itself, and it stops with kExitDiverged and advice,
// leaving its checkpoints as they were (none of them holds a non-finite
// value: skipped steps change nothing).
#ifndef PIPETRAIN_LAUNCHER_TRAINER_DIVERGENCE_H_
#define PIPETRAIN_LAUNCHER_TRAINER_DIVERGENCE_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "launcher/trainer/trainer.h"
#include "proto/train_config.pb.h"

namespace pipetrain {

// Distinct from a failure (1) and from preemption (75): rerunning the same
// command would diverge again, so a requeue wrapper must not retry it.
inline constexpr int kExitDiverged = 3;

// What a skipped step's log line says after "step N skipped: ".
std::string DescribeSkippedStep(const StepMetrics& step);

// The error that stops the run after `last`, the max_skipped_steps-th
// skipped step in a row, with what to change. It carries kExitDiverged.
absl::Status DivergedError(const TrainConfig& train, const StepMetrics& last);

// Whether `status` is that error (every rank reaches it in the same step, so
// no rank needs to abort the others).
bool IsDivergedError(const absl::Status& status);

// The exit status a failed command asks for: kExitDiverged for divergence;
// none for other errors (the caller's default).
std::optional<int> RequestedExitStatus(const absl::Status& status);

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_TRAINER_DIVERGENCE_H_
