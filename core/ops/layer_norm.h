// Layer normalization over the last dimension, with gain γ and bias β:
//   y = (x − mean) · rstd · γ + β,   rstd = 1 / sqrt(var + eps).
// Statistics are computed in double on the CPU and kept in the saved struct.
//
// Also: PowerNorm, the parameter-free normalisation BranchNorm's second shape
// uses: y = (x − mean) / σ^p with σ = sqrt(var + eps), p in [0, 1].
#ifndef PIPETRAIN_CORE_OPS_LAYER_NORM_H_
#define PIPETRAIN_CORE_OPS_LAYER_NORM_H_

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace pipetrain::ops {

struct LayerNormSaved {
  Tensor mean;  // [rows], same dtype as x
  Tensor rstd;  // [rows]
};

absl::StatusOr<Tensor> LayerNormForward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                        double eps, LayerNormSaved* saved);
// dx, written.
absl::StatusOr<Tensor> LayerNormBackwardInput(const Tensor& x, const Tensor& gamma,
                                              const LayerNormSaved& saved, const Tensor& dy);
// dgamma += Σ dy · x̂; dbeta += Σ dy.
absl::Status LayerNormBackwardWeight(const Tensor& x, const LayerNormSaved& saved, const Tensor& dy,
                                     Tensor& dgamma, Tensor& dbeta);

struct PowerNormSaved {
  Tensor mean;   // [rows]
  Tensor sigma;  // [rows], sqrt(var + eps)
  double power = 1.0;
};
absl::StatusOr<Tensor> PowerNormForward(const Tensor& x, double power, double eps,
                                        PowerNormSaved* saved);
absl::StatusOr<Tensor> PowerNormBackward(const Tensor& x, const PowerNormSaved& saved,
                                         const Tensor& dy);

}  // namespace pipetrain::ops

#endif  // PIPETRAIN_CORE_OPS_LAYER_NORM_H_
