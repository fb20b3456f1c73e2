// The CUDA attention behind attention.h, called once the dispatcher has
// checked the arguments (q, k, v, dcontext on the GPU in bf16 or f32;
// options.key_lengths, if set, validated on the host; saved.probs f32).
#ifndef PIPETRAIN_CORE_OPS_ATTENTION_CUDA_H_
#define PIPETRAIN_CORE_OPS_ATTENTION_CUDA_H_

#include "core/ops/attention.h"

namespace pipetrain::ops::cuda {

absl::StatusOr<Tensor> AttentionForward(const Tensor& q, const Tensor& k, const Tensor& v,
                                        const AttentionOptions& options, int64_t heads,
                                        AttentionSaved* saved);
absl::Status AttentionBackward(const Tensor& q, const Tensor& k, const Tensor& v,
                               const AttentionOptions& options, int64_t heads,
                               const AttentionSaved& saved, const Tensor& dcontext, Tensor* dq,
                               Tensor* dk, Tensor* dv);

}  // namespace pipetrain::ops::cuda

#endif  // PIPETRAIN_CORE_OPS_ATTENTION_CUDA_H_
