// Scaled dot-product attention over heads, with causal and key-padding masks
// and dropout on the probabilities. Serves self-attention (q, k, v from the
// same sequence) and cross-attention (k, v from the encoder output).
//
// q is [B, Tq, H·Dh]; k and v are [B, Tk, H·Dh]; the context is [B, Tq, H·Dh].
// Heads are the contiguous Dh-wide slices of the last dimension, so the
// projections' outputs are used as they are, without transposes.
#ifndef PIPETRAIN_CORE_OPS_ATTENTION_H_
#define PIPETRAIN_CORE_OPS_ATTENTION_H_

#include "absl/status/statusor.h"
#include "core/philox.h"
#include "core/tensor.h"

namespace pipetrain::ops {

struct AttentionOptions {
  int heads = 1;
  // Query i sees keys j <= i (self-attention of a decoder).
  bool causal = false;
  // i32 [B]: keys at positions >= key_lengths[b] are padding and get no weight.
  // Not set: every key is valid. Each length must be in [1, Tk]. On the host
  // (checked here) or on q's device (uploaded once per batch and checked
  // when the batch was built; not read back).
  Tensor key_lengths;
  double dropout = 0.0;  // on the probabilities, keyed by `rng`
  RngKey rng;
};

struct AttentionSaved {
  Tensor probs;  // [B, H, Tq, Tk], softmax after masking, before dropout
};

absl::StatusOr<Tensor> AttentionForward(const Tensor& q, const Tensor& k, const Tensor& v,
                                        const AttentionOptions& options, AttentionSaved* saved);

// Writes dq, dk, dv (no weights here, so there is no weight-gradient part).
// Each output is replaced by a newly allocated tensor; whatever it held
// before is released, never written into.
absl::Status AttentionBackward(const Tensor& q, const Tensor& k, const Tensor& v,
                               const AttentionOptions& options, const AttentionSaved& saved,
                               const Tensor& dcontext, Tensor* dq, Tensor* dk, Tensor* dv);

}  // namespace pipetrain::ops

#endif  // PIPETRAIN_CORE_OPS_ATTENTION_H_
