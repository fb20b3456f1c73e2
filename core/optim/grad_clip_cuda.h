// The CUDA implementations behind grad_clip.h (t and grads f32 or bf16 on the GPU).
#ifndef PIPETRAIN_CORE_OPTIM_GRAD_CLIP_CUDA_H_
#define PIPETRAIN_CORE_OPTIM_GRAD_CLIP_CUDA_H_

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace pipetrain::cuda {

// Σ t_i² in double, in a fixed order (the same bits on every run).
absl::StatusOr<double> SumOfSquares(const Tensor& t);

// t ← t · factor, element by element (the product taken in double).
absl::Status ScaleInPlace(Tensor& t, double factor);

}  // namespace pipetrain::cuda

#endif  // PIPETRAIN_CORE_OPTIM_GRAD_CLIP_CUDA_H_
