// Pointwise activations: exact GELU (x·Φ(x), with erf) and ReLU.
#ifndef PIPETRAIN_CORE_OPS_ACTIVATION_H_
#define PIPETRAIN_CORE_OPS_ACTIVATION_H_

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace pipetrain::ops {

enum class ActivationKind { kGelu, kRelu };

absl::StatusOr<Tensor> ActivationForward(ActivationKind kind, const Tensor& x);
// dx = f'(x) · dy, from the saved input x.
absl::StatusOr<Tensor> ActivationBackward(ActivationKind kind, const Tensor& x, const Tensor& dy);

}  // namespace pipetrain::ops

#endif  // PIPETRAIN_CORE_OPS_ACTIVATION_H_
