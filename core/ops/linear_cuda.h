// The CUDA implementations behind linear.h, called by its dispatcher once the
// arguments are checked (all on the GPU; x, w, b, dy bf16 or f32 and of one
// dtype; dw and db f32).
#ifndef PIPETRAIN_CORE_OPS_LINEAR_CUDA_H_
#define PIPETRAIN_CORE_OPS_LINEAR_CUDA_H_

#include "core/ops/linear.h"

namespace pipetrain::ops::cuda {

absl::StatusOr<Tensor> LinearForward(const Tensor& x, const Tensor& w, const Tensor* b);
absl::StatusOr<Tensor> LinearBackwardInput(const Tensor& dy, const Tensor& w);
absl::Status LinearBackwardWeight(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* db);

}  // namespace pipetrain::ops::cuda

#endif  // PIPETRAIN_CORE_OPS_LINEAR_CUDA_H_
