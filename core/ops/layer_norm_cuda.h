// The CUDA implementations behind layer_norm.h, called by its dispatcher once
// the arguments are checked (all on the GPU; x, gamma, beta, dy bf16 or f32;
// statistics and dgamma/dbeta f32).
#ifndef PIPETRAIN_CORE_OPS_LAYER_NORM_CUDA_H_
#define PIPETRAIN_CORE_OPS_LAYER_NORM_CUDA_H_

#include "core/ops/layer_norm.h"

namespace pipetrain::ops::cuda {

absl::StatusOr<Tensor> LayerNormForward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                        double eps, LayerNormSaved* saved);
absl::StatusOr<Tensor> LayerNormBackwardInput(const Tensor& x, const Tensor& gamma,
                                              const LayerNormSaved& saved, const Tensor& dy);
absl::Status LayerNormBackwardWeight(const Tensor& x, const LayerNormSaved& saved, const Tensor& dy,
                                     Tensor& dgamma, Tensor& dbeta);
absl::StatusOr<Tensor> PowerNormForward(const Tensor& x, double power, double eps,
                                        PowerNormSaved* saved);
absl::StatusOr<Tensor> PowerNormBackward(const Tensor& x, const PowerNormSaved& saved,
                                         const Tensor& dy);

}  // namespace pipetrain::ops::cuda

#endif  // PIPETRAIN_CORE_OPS_LAYER_NORM_CUDA_H_
