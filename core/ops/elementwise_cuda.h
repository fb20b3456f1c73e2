// The CUDA implementations behind elementwise.h, called by its dispatcher once
// the arguments are checked (all on the GPU; tensors bf16 or f32 and of one
// dtype, except ds, which is f32).
#ifndef PIPETRAIN_CORE_OPS_ELEMENTWISE_CUDA_H_
#define PIPETRAIN_CORE_OPS_ELEMENTWISE_CUDA_H_

#include "core/ops/elementwise.h"

namespace pipetrain::ops::cuda {

absl::StatusOr<Tensor> AddScaled(double a, const Tensor& x, double b, const Tensor& y);
absl::Status Axpy(double a, const Tensor& x, Tensor& y);
absl::StatusOr<Tensor> Scale(const Tensor& x, double a);
// Waits for the stream: the result is returned to the host.
absl::StatusOr<double> Dot(const Tensor& x, const Tensor& y);
// HeadScale: y = s[h]·x over [rows, heads, head_dim]; forward and backward-input.
absl::StatusOr<Tensor> HeadScale(const Tensor& x, const Tensor& s, int64_t head_dim);
absl::Status HeadScaleBackwardWeight(const Tensor& x, const Tensor& dy, int64_t head_dim,
                                     Tensor& ds);

}  // namespace pipetrain::ops::cuda

#endif  // PIPETRAIN_CORE_OPS_ELEMENTWISE_CUDA_H_
