// The CUDA implementation behind dropout.h, called by its dispatcher once the
// arguments are checked (in on the GPU, bf16 or f32, 0 < p < 1).
#ifndef PIPETRAIN_CORE_OPS_DROPOUT_CUDA_H_
#define PIPETRAIN_CORE_OPS_DROPOUT_CUDA_H_

#include "absl/status/statusor.h"
#include "core/philox.h"
#include "core/tensor.h"

namespace pipetrain::ops::cuda {

// out[i] = Dropped(i) ? 0 : in[i] / (1 − p), the mask the same bits as the CPU's.
absl::StatusOr<Tensor> DropoutApply(const Tensor& in, double p, const RngKey& rng);

}  // namespace pipetrain::ops::cuda

#endif  // PIPETRAIN_CORE_OPS_DROPOUT_CUDA_H_
