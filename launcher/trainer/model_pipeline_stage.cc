#include "launcher/trainer/model_pipeline_stage.h"

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace pipetrain {
namespace {

StageBoundary ToModel(const BoundaryTensors& b) { return StageBoundary{b.hidden, b.memory}; }
BoundaryTensors ToParallel(const StageBoundary& b) { return BoundaryTensors{b.hidden, b.memory}; }

}  // namespace

ModelPipelineStage::ModelPipelineStage(std::vector<std::unique_ptr<ModelStage>> chunks)
    : chunks_(std::move(chunks)) {}

void ModelPipelineStage::BeginStep(uint64_t seed, int64_t step, const std::vector<Batch>* batches,
                                   int microbatch_offset, double grad_scale) {
  seed_ = seed;
  step_ = step;
  batches_ = batches;
  offset_ = microbatch_offset;
  grad_scale_ = grad_scale;
  live_.clear();
  losses_.clear();
  weight_grads_done_.assign(chunks_.size(), 0);
  peak_live_ = 0;
  loss_sum_ = nll_sum_ = 0;
}

StepContext ModelPipelineStage::Context(int microbatch) const {
  return StepContext{
      .seed = seed_, .step = step_, .microbatch = offset_ + microbatch, .training = true};
}

absl::StatusOr<BoundaryTensors> ModelPipelineStage::Forward(int microbatch, int chunk,
                                                            const BoundaryTensors& input) {
  StageSaved& saved = live_[{microbatch, chunk}];
  peak_live_ = std::max(peak_live_, static_cast<int>(live_.size()));
  const ModelStage& stage = *chunks_[chunk];
  PT_ASSIGN_OR_RETURN(StageBoundary out, stage.Forward(Context(microbatch), (*batches_)[microbatch],
                                                       ToModel(input), &saved));
  if (stage.has_head()) losses_.push_back(saved.stats);
  return ToParallel(out);
}

absl::StatusOr<BoundaryTensors> ModelPipelineStage::BackwardInput(
    int microbatch, int chunk, const BoundaryTensors& grad_output) {
  auto it = live_.find({microbatch, chunk});
  if (it == live_.end()) {
    return absl::InternalError(absl::StrCat("backward of micro-batch ", microbatch, " chunk ",
                                            chunk, " before its forward"));
  }
  PT_ASSIGN_OR_RETURN(StageBoundary grad, chunks_[chunk]->BackwardInput(
                                              Context(microbatch), (*batches_)[microbatch],
                                              ToModel(grad_output), &it->second, grad_scale_));
  return ToParallel(grad);
}

absl::Status ModelPipelineStage::BackwardWeight(int microbatch, int chunk) {
  auto it = live_.find({microbatch, chunk});
  if (it == live_.end()) {
    return absl::InternalError(absl::StrCat("weight gradient of micro-batch ", microbatch,
                                            " chunk ", chunk, " before its forward"));
  }
  const bool last = ++weight_grads_done_[chunk] == static_cast<int>(batches_->size());
  ModelStage::FinalGradients on_final;
  if (last && on_span_final_) {
    on_final = [&](const FlatSegment& span) { return on_span_final_(chunk, span); };
  }
  PT_RETURN_IF_ERROR(chunks_[chunk]->BackwardWeight(Context(microbatch), (*batches_)[microbatch],
                                                    &it->second, on_final));
  live_.erase(it);  // the activations are released after the weight gradient
  if (last && on_chunk_final_) return on_chunk_final_(chunk);
  return absl::OkStatus();
}

BoundaryTensors ModelPipelineStage::ForwardInputBuffers(int microbatch, int chunk) {
  return ToParallel(chunks_[chunk]->InputShapes((*batches_)[microbatch]));
}

BoundaryTensors ModelPipelineStage::OutputGradBuffers(int microbatch, int chunk) {
  return ToParallel(chunks_[chunk]->OutputShapes((*batches_)[microbatch]));
}

absl::Status ModelPipelineStage::ReadLoss() {
  // Device sums come back in one copy; then they are added in forward order,
  // exactly as the host sums of a CPU run are.
  std::vector<ops::CrossEntropyStats*> all;
  for (ops::CrossEntropyStats& stats : losses_) all.push_back(&stats);
  PT_RETURN_IF_ERROR(ops::ReadCrossEntropySums(all));
  loss_sum_ = nll_sum_ = 0;
  for (const ops::CrossEntropyStats& stats : losses_) {
    loss_sum_ += stats.loss_sum;
    nll_sum_ += stats.nll_sum;
  }
  losses_.clear();
  return absl::OkStatus();
}

}  // namespace pipetrain
