// How one sub-layer (attention or FFN) joins the residual stream, for every
// normalisation kind of the spec. A sub-layer computes
//
//   h = pre_ln ? LN_pre(x) : x               (Enter)
//   f = F(h)                                  (the block: attention or FFN)
//   f = dropout(f);  f = branch(f, t)         (Exit)
//   y = post_ln ? LN_post(α·x + f) : α·x + f
//
// where branch() is BranchNorm's rescaling (a(t)·f, or f / σ(f)^p(t) after
// centring) and the identity otherwise. The kinds map onto it as:
//   POST_LN: post LN.             PRE_LN, NORMFORMER, SUBLN: pre LN.
//   DEEPNORM, FOUNDATION_LN, UPSCALE_LN: post LN with α.   BRANCHNORM: post LN + branch.
// The extra LNs of NormFormer and SubLN live inside the blocks.
#ifndef PIPETRAIN_MODELS_RESIDUAL_JOIN_H_
#define PIPETRAIN_MODELS_RESIDUAL_JOIN_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/ops/layer_norm.h"
#include "models/parameter_store.h"
#include "models/step_context.h"
#include "proto/model_spec.pb.h"

namespace pipetrain {

struct JoinConfig {
  int64_t d_model = 0;
  ResidualNorm norm = POST_LN;
  double alpha = 1.0;
  double eps = 1e-5;
  double dropout = 0.0;
  BranchNorm branch;  // used when norm == BRANCHNORM
};

// True for the kinds that normalise before the block and need a final LN
// after the stack.
bool IsPreNorm(ResidualNorm norm);

struct JoinSaved {
  Tensor x;  // residual input
  ops::LayerNormSaved pre_ln;
  Tensor f;  // branch after dropout, before rescaling (for PowerNorm's backward)
  ops::PowerNormSaved power;
  double branch_scale = 1.0;
  bool power_norm = false;
  Tensor s;  // α·x + branch, the post-LN input
  ops::LayerNormSaved post_ln;
  // Set by the backward passes for the weight-gradient pass.
  Tensor d_post_ln_out;
  Tensor d_pre_ln_out;
};

class ResidualJoin {
 public:
  ResidualJoin(ParameterStore& store, const std::string& prefix, const JoinConfig& config);

  // h = LN_pre(x) or x. Saves x.
  absl::StatusOr<Tensor> Enter(const StepContext& ctx, const Tensor& x, JoinSaved* saved) const;
  // y from the saved x and the block output f.
  absl::StatusOr<Tensor> Exit(const StepContext& ctx, int layer, int site, const Tensor& f,
                              JoinSaved* saved) const;

  // From dy: the gradient reaching x along the residual path (α·ds) and the
  // gradient of the block output f.
  absl::Status ExitBackward(const StepContext& ctx, int layer, int site, const Tensor& dy,
                            JoinSaved* saved, Tensor* dx_residual, Tensor* df) const;
  // From the gradient of h: the gradient reaching x through the block.
  absl::StatusOr<Tensor> EnterBackward(const Tensor& dh, JoinSaved* saved) const;
  // Accumulates LN gains/biases from what the backward passes recorded.
  absl::Status BackwardWeight(JoinSaved* saved) const;

 private:
  // BranchNorm's a(t) or p(t) at this step.
  double BranchProgress(int64_t step) const;

  ParameterStore& store_;
  JoinConfig config_;
  bool pre_ln_ = false;
  bool post_ln_ = false;
  ParamId pre_gamma_ = -1, pre_beta_ = -1;
  ParamId post_gamma_ = -1, post_beta_ = -1;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_MODELS_RESIDUAL_JOIN_H_
