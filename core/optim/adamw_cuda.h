// The CUDA implementation behind adamw.h, called by AdamWStep once the
// arguments are checked (params, grads, m, v: f32 on the GPU, equal sizes).
#ifndef PIPETRAIN_CORE_OPTIM_ADAMW_CUDA_H_
#define PIPETRAIN_CORE_OPTIM_ADAMW_CUDA_H_

#include "core/optim/adamw.h"

namespace pipetrain::cuda {

absl::Status AdamWStep(const AdamWHyper& hyper, int64_t step, Tensor& params, const Tensor& grads,
                       Tensor& m, Tensor& v);
absl::Status CountNonFiniteAdamWResults(const AdamWHyper& hyper, int64_t step, const Tensor& params,
                                        const Tensor& grads, const Tensor& m, const Tensor& v,
                                        Tensor& nonfinite);

}  // namespace pipetrain::cuda

#endif  // PIPETRAIN_CORE_OPTIM_ADAMW_CUDA_H_
