// The executor's view of the model: what a rank computes for one micro-batch
// of one of its chunks (virtual stages). `models/` implements the math and the
// launcher adapts it to this interface, so `parallel/` never sees a layer.
#ifndef PIPETRAIN_PARALLEL_PIPELINE_STAGE_H_
#define PIPETRAIN_PARALLEL_PIPELINE_STAGE_H_

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace pipetrain {

// The tensors crossing a stage boundary for one micro-batch: the residual
// stream of the stack being computed and, once the encoder is done, its
// output (the decoder's memory). Either may be undefined (not sent). Their
// gradients travel back in the same struct.
struct BoundaryTensors {
  Tensor hidden;
  Tensor memory;
};

class PipelineStage {
 public:
  virtual ~PipelineStage() = default;

  // Forward of `microbatch` through `chunk`; `input` is what the previous
  // virtual stage sent (empty for the first). The last virtual stage returns
  // an empty struct (its loss stays inside).
  virtual absl::StatusOr<BoundaryTensors> Forward(int microbatch, int chunk,
                                                  const BoundaryTensors& input) = 0;
  // Input gradient from the gradient of the outputs (empty for the last
  // virtual stage, which starts from its loss).
  virtual absl::StatusOr<BoundaryTensors> BackwardInput(int microbatch, int chunk,
                                                        const BoundaryTensors& grad_output) = 0;
  // Weight gradients of the micro-batch (accumulated).
  virtual absl::Status BackwardWeight(int microbatch, int chunk) = 0;

  // Tensors of the right shape and dtype to receive the forward input of
  // (microbatch, chunk), and the gradient of its output.
  virtual BoundaryTensors ForwardInputBuffers(int microbatch, int chunk) = 0;
  virtual BoundaryTensors OutputGradBuffers(int microbatch, int chunk) = 0;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_PARALLEL_PIPELINE_STAGE_H_
