// The CUDA implementations behind embedding.h, called by its dispatcher once
// the arguments are checked (all on the GPU; ids i32 already range-checked;
// table, dy and x bf16 or f32; dtable f32).
#ifndef PIPETRAIN_CORE_OPS_EMBEDDING_CUDA_H_
#define PIPETRAIN_CORE_OPS_EMBEDDING_CUDA_H_

#include "core/ops/embedding.h"

namespace pipetrain::ops::cuda {

absl::StatusOr<Tensor> EmbeddingForward(const Tensor& ids, const Tensor& table, double scale);
absl::Status EmbeddingBackwardWeight(const Tensor& ids, const Tensor& dy, double scale,
                                     Tensor& dtable);
absl::Status AddSinusoidalPositions(Tensor& x);

}  // namespace pipetrain::ops::cuda

#endif  // PIPETRAIN_CORE_OPS_EMBEDDING_CUDA_H_
