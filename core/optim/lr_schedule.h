// Learning rate at an optimizer step, from the training config.
#ifndef PIPETRAIN_CORE_OPTIM_LR_SCHEDULE_H_
#define PIPETRAIN_CORE_OPTIM_LR_SCHEDULE_H_

#include <cstdint>

#include "proto/train_config.pb.h"

namespace pipetrain {

// `update` counts from 1 (the first optimizer update). Warm-up rises linearly
// to `lr` at update `warmup_steps`; then
//   INVERSE_SQRT: lr · sqrt(warmup / update)   (warmup 0 counts as 1)
//   COSINE:       min_lr + (lr − min_lr) · (1 + cos(π · progress)) / 2 over the remaining updates
//   CONSTANT:     lr
double LearningRate(const TrainConfig& config, int64_t update);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_OPTIM_LR_SCHEDULE_H_
