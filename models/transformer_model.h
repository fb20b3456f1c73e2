// The whole model assembled from a ModelSpec: one ModelStage holding every
// layer (shared embeddings, encoder and decoder stacks with each layer's
// normalisation, final LNs for pre-norm stacks, output projection and the
// label-smoothed loss), with all parameters in one ParameterStore.
#ifndef PIPETRAIN_MODELS_TRANSFORMER_MODEL_H_
#define PIPETRAIN_MODELS_TRANSFORMER_MODEL_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/ops/cross_entropy.h"
#include "models/model_stage.h"

namespace pipetrain {

using ModelSaved = StageSaved;

class TransformerModel {
 public:
  // Builds the layers and registers, allocates and initialises the parameters
  // (keyed by `seed`). The spec must be validated and have defaults applied.
  // With `device` kCuda the whole model lives on the GPU (f32 only, for now).
  static absl::StatusOr<std::unique_ptr<TransformerModel>> Create(const ModelSpec& spec,
                                                                  DType dtype, uint64_t seed,
                                                                  Device device = Device::kCpu);

  // Forward pass of one micro-batch; returns its loss sums.
  absl::StatusOr<ops::CrossEntropyStats> Forward(const StepContext& ctx, const Batch& batch,
                                                 ModelSaved* saved) const;
  // Backward pass of d(grad_scale · loss_sum): parameter gradients accumulate
  // over calls until ZeroGrads(); the embedding's gradient is the sum of its
  // uses, brought up to date by every call.
  absl::Status Backward(const StepContext& ctx, const Batch& batch, ModelSaved* saved,
                        double grad_scale);
  void ZeroGrads() { stage_->ZeroGrads(); }
  // For a model that only evaluates (validation, the early-update probe):
  // forwards keep nothing for backward, so a 1,000-layer model's loss
  // forward holds one layer's activations at a time; Backward is refused.
  void SetForwardOnly() { stage_->SetForwardOnly(); }

  ParameterStore& params() { return stage_->params(); }
  const ParameterStore& params() const { return stage_->params(); }
  ModelStage& stage() { return *stage_; }
  const ModelSpec& spec() const { return stage_->spec(); }

 private:
  explicit TransformerModel(std::unique_ptr<ModelStage> stage) : stage_(std::move(stage)) {}

  std::unique_ptr<ModelStage> stage_;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_MODELS_TRANSFORMER_MODEL_H_
