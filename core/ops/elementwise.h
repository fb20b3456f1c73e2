// Elementwise arithmetic the layers need around residual connections, and
// NormFormer's learned per-head scale.
#ifndef PIPETRAIN_CORE_OPS_ELEMENTWISE_H_
#define PIPETRAIN_CORE_OPS_ELEMENTWISE_H_

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace pipetrain::ops {

// a·x + b·y, same shapes and dtypes.
absl::StatusOr<Tensor> AddScaled(double a, const Tensor& x, double b, const Tensor& y);
// y += a·x in place.
absl::Status Axpy(double a, const Tensor& x, Tensor& y);
// a·x, a new tensor.
absl::StatusOr<Tensor> Scale(const Tensor& x, double a);
// Σ x · y over all elements, accumulated in double.
absl::StatusOr<double> Dot(const Tensor& x, const Tensor& y);

// Per-head scale: x is [..., H·Dh], s is [H]; y[..., h, :] = s[h] · x[..., h, :].
absl::StatusOr<Tensor> HeadScaleForward(const Tensor& x, const Tensor& s);
absl::StatusOr<Tensor> HeadScaleBackwardInput(const Tensor& s, const Tensor& dy);
// ds[h] += Σ x[..., h, :] · dy[..., h, :].
absl::Status HeadScaleBackwardWeight(const Tensor& x, const Tensor& dy, Tensor& ds);

}  // namespace pipetrain::ops

#endif  // PIPETRAIN_CORE_OPS_ELEMENTWISE_H_
