// DeepNet's early-update measure (train.early_update_steps): how far the
// model's output on one fixed batch has moved from where it started,
// ||F(x; θ_t) − F(x; θ_0)||, over the first steps of a run. Post-LN's
// instability shows here first: its output jumps in the first updates, while
// DeepNorm bounds the update of a deep stack (DeepNet, section 3).
//
// F is the model's top (the output projection's input, after the final
// norm: the decoder's, or the encoder's for an encoder-only model), x the
// run's first training batch (step 0's pairs, drawn from the
// same data and seed). θ_0 is rebuilt from the spec's seed (initialisation is
// by parameter name, so it equals the trainer's at step 0 whatever the
// placement), which lets a run resumed inside the window go on measuring.
#ifndef PIPETRAIN_LAUNCHER_TRAINER_EARLY_UPDATE_H_
#define PIPETRAIN_LAUNCHER_TRAINER_EARLY_UPDATE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "core/data/batch.h"
#include "core/tensor.h"
#include "models/transformer_model.h"
#include "proto/run_spec.pb.h"

namespace pipetrain {

class EarlyUpdateProbe {
 public:
  // Opens the run's data (as the trainer does), collates step 0's pairs and
  // records F(x; θ_0). The spec must be resolved.
  static absl::StatusOr<std::unique_ptr<EarlyUpdateProbe>> Create(const RunSpec& spec);

  // The root mean square over the batch's target tokens (pad excluded) of
  // the per-token distance ||F(x; θ)_i − F(x; θ_0)_i||_2, for the model
  // whose flat parameter buffer (one process's layout, any device or dtype)
  // is `flat_params`, after `training_step` updates (BranchNorm's branch
  // scale follows the step, as in training and validation).
  absl::StatusOr<double> Distance(const Tensor& flat_params, int64_t training_step);
  // The same RMS of ||F(x; θ_0)_i||_2: the scale Distance compares against.
  double initial_rms() const { return initial_rms_; }
  int64_t tokens() const { return tokens_; }

 private:
  EarlyUpdateProbe() = default;
  // F(x; θ) for the parameters in model_, rows of the target tokens only.
  absl::StatusOr<Tensor> Output(int64_t training_step);

  Batch batch_;
  std::unique_ptr<TransformerModel> model_;
  Tensor initial_;  // F(x; θ_0), [tokens, d], f32
  double initial_rms_ = 0;
  int64_t tokens_ = 0;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_TRAINER_EARLY_UPDATE_H_
