// The CUDA implementations behind activation.h, called by its dispatcher once
// the arguments are checked (x and dy on the GPU, bf16 or f32, of one dtype).
#ifndef PIPETRAIN_CORE_OPS_ACTIVATION_CUDA_H_
#define PIPETRAIN_CORE_OPS_ACTIVATION_CUDA_H_

#include "core/ops/activation.h"

namespace pipetrain::ops::cuda {

absl::StatusOr<Tensor> ActivationForward(ActivationKind kind, const Tensor& x);
absl::StatusOr<Tensor> ActivationBackward(ActivationKind kind, const Tensor& x, const Tensor& dy);

}  // namespace pipetrain::ops::cuda

#endif  // PIPETRAIN_CORE_OPS_ACTIVATION_CUDA_H_
