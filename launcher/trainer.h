// The one-process trainer: a model, its optimizer state and the step loop
// (micro-batches with gradient accumulation, global-norm clipping, AdamW,
// learning-rate schedule). The pipeline executor replaces the model call of
// a step; everything around it stays.
#ifndef PIPETRAIN_LAUNCHER_TRAINER_H_
#define PIPETRAIN_LAUNCHER_TRAINER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "launcher/step_data.h"
#include "models/checkpoint.h"
#include "models/transformer_model.h"
#include "proto/run_spec.pb.h"

namespace pipetrain {

struct StepMetrics {
  int64_t step = 0;  // 1-based number of the update just made
  double loss = 0;   // smoothed loss per target token (nats)
  double nll = 0;    // −log p(target) per target token (nats)
  double lr = 0;
  double grad_norm = 0;       // before clipping
  int64_t target_tokens = 0;  // label tokens of the step
  int64_t source_tokens = 0;  // non-pad source tokens of the step
  int sentences = 0;
  double seconds = 0;  // wall time of the step
};

class Trainer {
 public:
  // The spec must be resolved (defaults applied, validated).
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(const RunSpec& spec);

  // Runs optimizer update number step()+1 on the spec's data.
  absl::StatusOr<StepMetrics> Step();

  // Writes a checkpoint of the model, the AdamW moments, the step and the
  // data cursor into `run_dir` (models/checkpoint.h); returns its directory.
  absl::StatusOr<std::string> SaveCheckpoint(const std::string& run_dir) const;
  // Continues from a checkpoint: weights, moments, step and data position.
  absl::Status RestoreCheckpoint(const CheckpointReader& reader);

  int64_t step() const { return step_; }
  StepData& data() { return *data_; }
  TransformerModel& model() { return *model_; }
  std::string ParamsDigest() const;

 private:
  Trainer(const RunSpec& spec, std::unique_ptr<TransformerModel> model,
          std::unique_ptr<StepData> data);

  RunSpec spec_;
  std::unique_ptr<StepData> data_;
  std::unique_ptr<TransformerModel> model_;
  Tensor adam_m_, adam_v_;
  int64_t step_ = 0;  // updates done
};

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_TRAINER_H_
