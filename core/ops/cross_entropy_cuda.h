// The CUDA implementation behind cross_entropy.h, called by its dispatcher
// once the arguments are checked (logits bf16 or f32 [N, V] and targets i32
// [N] on the GPU, every target in range or ignore_index; saved.logsumexp f32).
#ifndef PIPETRAIN_CORE_OPS_CROSS_ENTROPY_CUDA_H_
#define PIPETRAIN_CORE_OPS_CROSS_ENTROPY_CUDA_H_

#include "core/ops/cross_entropy.h"

namespace pipetrain::ops::cuda {

absl::StatusOr<CrossEntropyStats> CrossEntropyForward(const Tensor& logits, const Tensor& targets,
                                                      double smoothing, int32_t ignore_index,
                                                      CrossEntropySaved* saved,
                                                      bool sums_on_device);
absl::StatusOr<Tensor> CrossEntropyBackward(const Tensor& logits, const Tensor& targets,
                                            double smoothing, int32_t ignore_index,
                                            const CrossEntropySaved& saved, double grad_scale);

}  // namespace pipetrain::ops::cuda

#endif  // PIPETRAIN_CORE_OPS_CROSS_ENTROPY_CUDA_H_
