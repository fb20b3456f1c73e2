// Multi-head attention block: q/k/v projections, scaled dot-product attention,
// output projection; self-attention (optionally causal) or cross-attention
// over the encoder output. Carries the in-block extras of two norm kinds:
//   NORMFORMER: a learned scale per head on the attention context, and an LN
//               on the block output (post-attention LN).
//   SUBLN:      an LN on the context, before the output projection.
#ifndef PIPETRAIN_MODELS_ATTENTION_BLOCK_H_
#define PIPETRAIN_MODELS_ATTENTION_BLOCK_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/ops/attention.h"
#include "core/ops/layer_norm.h"
#include "models/parameter_store.h"
#include "models/step_context.h"
#include "proto/model_spec.pb.h"

namespace pipetrain {

struct AttentionConfig {
  int64_t d_model = 0;
  int heads = 1;
  bool causal = false;
  bool cross = false;  // keys and values from the encoder output
  ResidualNorm norm = POST_LN;
  double value_output_gain = 1.0;  // DeepNorm's β on V and O; Q and K keep gain 1
  double dropout = 0.0;            // on attention probabilities
  double eps = 1e-5;
};

struct AttentionSaved {
  Tensor h, memory;  // block input, and encoder output for cross-attention
  Tensor q, k, v;
  ops::AttentionOptions options;
  ops::AttentionSaved attention;
  Tensor context;  // attention output, [B, T, d]
  Tensor scaled;   // after NormFormer's head scale
  ops::LayerNormSaved sub_ln;
  Tensor o_in;   // output projection input
  Tensor o_out;  // output projection output (NormFormer's LN input)
  ops::LayerNormSaved post_ln;
  // Recorded by BackwardInput for BackwardWeight.
  Tensor dq, dk, dv, d_o_out, d_post_ln_out, d_sub_ln_out, d_scaled;
};

class AttentionBlock {
 public:
  AttentionBlock(ParameterStore& store, const std::string& prefix, const AttentionConfig& config);

  // h: [B, T, d]. memory: [B, S, d] for cross-attention, else undefined.
  // key_lengths: i32 [B] of valid keys (source lengths for cross-attention and
  // encoder self-attention), or undefined when no key is padding.
  absl::StatusOr<Tensor> Forward(const StepContext& ctx, int layer, const Tensor& h,
                                 const Tensor& memory, const Tensor& key_lengths,
                                 AttentionSaved* saved) const;
  // Returns dh. For cross-attention, the gradient of the memory is ADDED to
  // *dmemory (allocated when undefined), since every decoder layer reads it.
  absl::StatusOr<Tensor> BackwardInput(const StepContext& ctx, AttentionSaved* saved,
                                       const Tensor& dout, Tensor* dmemory) const;
  absl::Status BackwardWeight(AttentionSaved* saved) const;

 private:
  ParameterStore& store_;
  AttentionConfig config_;
  ParamId wq_, bq_, wk_, bk_, wv_, bv_, wo_, bo_;
  ParamId head_scale_ = -1;
  ParamId sub_gamma_ = -1, sub_beta_ = -1;
  ParamId post_gamma_ = -1, post_beta_ = -1;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_MODELS_ATTENTION_BLOCK_H_
