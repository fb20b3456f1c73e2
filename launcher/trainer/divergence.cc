#include "launcher/trainer/divergence.h"

#include <cmath>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pipetrain {
namespace {

constexpr char kExitStatusPayload[] = "type.pipetrain/exit_status";

std::string Reason(const StepMetrics& step) {
  if (!std::isfinite(step.loss)) return absl::StrFormat("the loss is %g", step.loss);
  if (!std::isfinite(step.grad_norm)) {
    return absl::StrFormat("the gradient norm is %g", step.grad_norm);
  }
  if (step.nonfinite_updates > 0) {
    return absl::StrFormat(
        "the update would make %d weights or AdamW moments non-finite (gradient norm %.4g)",
        step.nonfinite_updates, step.grad_norm);
  }
  return "the gradients were marked non-finite";  // the test hook
}

}  // namespace

std::string DescribeSkippedStep(const StepMetrics& step) {
  return absl::StrFormat("%s; weights and moments left as they were (%d in a row, %d in all)",
                         Reason(step), step.skipped_in_a_row, step.skipped_steps);
}

absl::Status DivergedError(const TrainConfig& train, const StepMetrics& last) {
  std::string advice = absl::StrFormat("lower train.lr (now %g)", train.lr());
  if (train.clip_norm() <= 0) {
    absl::StrAppend(&advice, ", enable clipping (train.clip_norm: 1.0)");
  } else {
    absl::StrAppend(&advice,
                    absl::StrFormat(", lower train.clip_norm (now %g)", train.clip_norm()));
  }
  absl::StrAppend(
      &advice, absl::StrFormat(", raise train.warmup_steps (now %d), or use a residual norm that "
                               "keeps deep models stable (model.norm: DEEPNORM or PRE_LN)",
                               train.warmup_steps()));
  absl::Status status = absl::AbortedError(absl::StrFormat(
      "training diverged at step %d: %d steps in a row were skipped (train.max_skipped_steps); "
      "the last one because %s. The checkpoints in %s hold the last finite state. To continue, "
      "%s, then rerun (it resumes from the latest checkpoint)",
      last.step, last.skipped_in_a_row, Reason(last), train.output_dir(), advice));
  status.SetPayload(kExitStatusPayload, absl::Cord(absl::StrCat(kExitDiverged)));
  return status;
}

bool IsDivergedError(const absl::Status& status) {
  return status.GetPayload(kExitStatusPayload).has_value();
}

std::optional<int> RequestedExitStatus(const absl::Status& status) {
  if (IsDivergedError(status)) return kExitDiverged;
  return std::nullopt;
}

}  // namespace pipetrain
