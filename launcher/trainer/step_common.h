// The parts of an optimizer step that the one-process and the pipeline
// trainers share: drawing the step's batch, the update, the final checks.
#ifndef PIPETRAIN_LAUNCHER_TRAINER_STEP_COMMON_H_
#define PIPETRAIN_LAUNCHER_TRAINER_STEP_COMMON_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/batch.h"
#include "core/optim/adamw.h"
#include "launcher/trainer/step_data.h"
#include "launcher/trainer/trainer.h"
#include "proto/run_spec.pb.h"

namespace pipetrain {

// The global batch of optimizer step `step` (0-based), split into
// `microbatches` micro-batches; fills the token and sentence counts of `metrics`.
absl::StatusOr<std::vector<Batch>> DrawStepBatches(const RunSpec& spec, StepData& data,
                                                   int64_t step, int microbatches,
                                                   StepMetrics* metrics);

// Scales `grads` to the global norm train.clip_norm, given the global sum of
// squares (finite), when clipping is on.
absl::Status ClipGradients(const TrainConfig& train, double squares, Tensor& grads);

// AdamW's hyper-parameters for update number `update` (1-based).
AdamWHyper AdamWHyperFor(const TrainConfig& train, int64_t update);

// Fills loss/nll per target token and the lr of `metrics`.
void FinishMetrics(const TrainConfig& train, double loss_sum, double nll_sum, StepMetrics* metrics);

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_TRAINER_STEP_COMMON_H_
