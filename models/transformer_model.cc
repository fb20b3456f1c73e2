#include "models/transformer_model.h"

#include "core/status_macros.h"

namespace pipetrain {

absl::StatusOr<std::unique_ptr<TransformerModel>> TransformerModel::Create(const ModelSpec& spec,
                                                                           DType dtype,
                                                                           uint64_t seed,
                                                                           Device device) {
  PT_ASSIGN_OR_RETURN(std::unique_ptr<ModelStage> stage,
                      ModelStage::Create(spec, dtype, seed, 0,
                                         spec.encoder_layers() + spec.decoder_layers(), device));
  return std::unique_ptr<TransformerModel>(new TransformerModel(std::move(stage)));
}

absl::StatusOr<ops::CrossEntropyStats> TransformerModel::Forward(const StepContext& ctx,
                                                                 const Batch& batch,
                                                                 ModelSaved* saved) const {
  PT_RETURN_IF_ERROR(stage_->Forward(ctx, batch, StageBoundary(), saved).status());
  return saved->stats;
}

absl::Status TransformerModel::Backward(const StepContext& ctx, const Batch& batch,
                                        ModelSaved* saved, double grad_scale) {
  PT_RETURN_IF_ERROR(
      stage_->BackwardInput(ctx, batch, StageBoundary(), saved, grad_scale).status());
  PT_RETURN_IF_ERROR(stage_->BackwardWeight(ctx, batch, saved));
  return stage_->SetEmbeddingGrad({stage_->embedding_partial(kOutputUse),
                                   stage_->embedding_partial(kTargetUse),
                                   stage_->embedding_partial(kSourceUse)});
}

}  // namespace pipetrain
