// Adapts a rank's ModelStages (one per interleaved chunk) to the executor's
// PipelineStage interface: keeps the step's micro-batches, the saved
// activations of every (micro-batch, chunk) in flight, and the loss sums.
#ifndef PIPETRAIN_LAUNCHER_TRAINER_MODEL_PIPELINE_STAGE_H_
#define PIPETRAIN_LAUNCHER_TRAINER_MODEL_PIPELINE_STAGE_H_

#include <functional>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "models/model_stage.h"
#include "parallel/pipeline_stage.h"

namespace pipetrain {

class ModelPipelineStage : public PipelineStage {
 public:
  // chunks[c] is this rank's virtual stage c.
  explicit ModelPipelineStage(std::vector<std::unique_ptr<ModelStage>> chunks);

  // Starts a step: `batches` are this replica's micro-batches (index = the
  // executor's micro-batch number); `microbatch_offset` is their position in
  // the global batch (it keys dropout, so replicas draw different masks, exactly
  // as one process running all micro-batches would).
  void BeginStep(uint64_t seed, int64_t step, const std::vector<Batch>* batches,
                 int microbatch_offset, double grad_scale);
  // Gradients becoming final during the step's last weight-gradient pass of
  // a chunk: `on_span(c, span)` for each part of chunk c's flat gradient
  // buffer as it is done (ModelStage::BackwardWeight), then `on_chunk(c)`
  // when the whole chunk is (its embedding partials included). Their
  // data-parallel sums can start at once, while the rest of the backward
  // runs. An error from either fails that BackwardWeight.
  void OnGradientsFinal(std::function<absl::Status(int, const FlatSegment&)> on_span,
                        std::function<absl::Status(int)> on_chunk) {
    on_span_final_ = std::move(on_span);
    on_chunk_final_ = std::move(on_chunk);
  }

  absl::StatusOr<BoundaryTensors> Forward(int microbatch, int chunk,
                                          const BoundaryTensors& input) override;
  absl::StatusOr<BoundaryTensors> BackwardInput(int microbatch, int chunk,
                                                const BoundaryTensors& grad_output) override;
  absl::Status BackwardWeight(int microbatch, int chunk) override;
  BoundaryTensors ForwardInputBuffers(int microbatch, int chunk) override;
  BoundaryTensors OutputGradBuffers(int microbatch, int chunk) override;

  // Reads the loss sums of the step's micro-batches (on a device: one copy
  // for all of them); call after the schedule.
  absl::Status ReadLoss();
  // Loss sums of the step, once read (non-zero only on the rank with the head).
  double loss_sum() const { return loss_sum_; }
  double nll_sum() const { return nll_sum_; }
  // Most (micro-batch, chunk) activations held at once during the step.
  int peak_live() const { return peak_live_; }

  std::vector<std::unique_ptr<ModelStage>>& chunks() { return chunks_; }

 private:
  StepContext Context(int microbatch) const;

  std::vector<std::unique_ptr<ModelStage>> chunks_;
  const std::vector<Batch>* batches_ = nullptr;
  uint64_t seed_ = 0;
  int64_t step_ = 0;
  int offset_ = 0;
  double grad_scale_ = 1.0;
  std::map<std::pair<int, int>, StageSaved> live_;
  std::vector<ops::CrossEntropyStats> losses_;  // the head's, in forward order
  std::vector<int> weight_grads_done_;          // per chunk, this step
  std::function<absl::Status(int, const FlatSegment&)> on_span_final_;
  std::function<absl::Status(int)> on_chunk_final_;
  int peak_live_ = 0;
  double loss_sum_ = 0, nll_sum_ = 0;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_TRAINER_MODEL_PIPELINE_STAGE_H_
