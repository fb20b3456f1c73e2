// Linear (fully connected) layer: y = x · wᵀ + b.
//
// x is [..., in] (leading dims are flattened into rows), w is [out, in],
// b is [out] or absent, y is [..., out]. Backward is split (DESIGN.md
// decision 1): the input gradient is written, weight gradients accumulate.
#ifndef PIPETRAIN_CORE_OPS_LINEAR_H_
#define PIPETRAIN_CORE_OPS_LINEAR_H_

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace pipetrain::ops {

absl::StatusOr<Tensor> LinearForward(const Tensor& x, const Tensor& w, const Tensor* b);

// dx = dy · w, shaped like x.
absl::StatusOr<Tensor> LinearBackwardInput(const Tensor& dy, const Tensor& w);

// dw += dyᵀ · x; db += Σ_rows dy (when db is not null).
absl::Status LinearBackwardWeight(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* db);

}  // namespace pipetrain::ops

#endif  // PIPETRAIN_CORE_OPS_LINEAR_H_
