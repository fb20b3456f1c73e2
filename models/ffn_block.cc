#include "models/ffn_block.h"

#include "core/ops/dropout.h"
#include "core/ops/linear.h"
#include "core/status_macros.h"

namespace pipetrain {

FfnBlock::FfnBlock(ParameterStore& store, const std::string& prefix, const FfnConfig& config)
    : store_(store), config_(config) {
  const int64_t d = config.d_model, f = config.ffn_dim;
  w1_ = store.Add(prefix + ".fc1.weight", {f, d}, {InitKind::kXavierNormal, config.gain});
  b1_ = store.Add(prefix + ".fc1.bias", {f}, {InitKind::kZeros});
  if (config.norm == NORMFORMER || config.norm == SUBLN) {
    inner_gamma_ = store.Add(prefix + ".inner_ln.gamma", {f}, {InitKind::kOnes});
    inner_beta_ = store.Add(prefix + ".inner_ln.beta", {f}, {InitKind::kZeros});
  }
  w2_ = store.Add(prefix + ".fc2.weight", {d, f}, {InitKind::kXavierNormal, config.gain});
  b2_ = store.Add(prefix + ".fc2.bias", {d}, {InitKind::kZeros});
}

absl::StatusOr<Tensor> FfnBlock::Forward(const StepContext& ctx, int layer, const Tensor& h,
                                         FfnSaved* saved) const {
  saved->h = h;
  const Tensor b1 = store_.param(b1_), b2 = store_.param(b2_);
  PT_ASSIGN_OR_RETURN(saved->pre_act, ops::LinearForward(h, store_.param(w1_), &b1));
  PT_ASSIGN_OR_RETURN(Tensor a, ops::ActivationForward(config_.activation, saved->pre_act));
  if (inner_gamma_ >= 0) {
    saved->act = a;
    PT_ASSIGN_OR_RETURN(
        a, ops::LayerNormForward(a, store_.param(inner_gamma_), store_.param(inner_beta_),
                                 config_.eps, &saved->inner_ln));
  }
  const double p = ctx.training ? config_.dropout : 0.0;
  PT_ASSIGN_OR_RETURN(saved->fc2_in, ops::DropoutForward(a, p, ctx.Key(layer, kSiteFfnActivation)));
  return ops::LinearForward(saved->fc2_in, store_.param(w2_), &b2);
}

absl::StatusOr<Tensor> FfnBlock::BackwardInput(const StepContext& ctx, int layer, FfnSaved* saved,
                                               const Tensor& dout) const {
  saved->d_fc2_out = dout;
  PT_ASSIGN_OR_RETURN(Tensor d_fc2_in, ops::LinearBackwardInput(dout, store_.param(w2_)));
  const double p = ctx.training ? config_.dropout : 0.0;
  PT_ASSIGN_OR_RETURN(Tensor da,
                      ops::DropoutBackward(d_fc2_in, p, ctx.Key(layer, kSiteFfnActivation)));
  if (inner_gamma_ >= 0) {
    saved->d_inner_ln_out = da;
    PT_ASSIGN_OR_RETURN(da, ops::LayerNormBackwardInput(saved->act, store_.param(inner_gamma_),
                                                        saved->inner_ln, da));
  }
  PT_ASSIGN_OR_RETURN(saved->d_pre_act,
                      ops::ActivationBackward(config_.activation, saved->pre_act, da));
  return ops::LinearBackwardInput(saved->d_pre_act, store_.param(w1_));
}

absl::Status FfnBlock::BackwardWeight(FfnSaved* saved) const {
  Tensor dw1 = store_.grad(w1_), db1 = store_.grad(b1_);
  Tensor dw2 = store_.grad(w2_), db2 = store_.grad(b2_);
  PT_RETURN_IF_ERROR(ops::LinearBackwardWeight(saved->fc2_in, saved->d_fc2_out, dw2, &db2));
  PT_RETURN_IF_ERROR(ops::LinearBackwardWeight(saved->h, saved->d_pre_act, dw1, &db1));
  if (inner_gamma_ >= 0) {
    Tensor dg = store_.grad(inner_gamma_), db = store_.grad(inner_beta_);
    PT_RETURN_IF_ERROR(
        ops::LayerNormBackwardWeight(saved->act, saved->inner_ln, saved->d_inner_ln_out, dg, db));
  }
  saved->d_fc2_out = saved->d_inner_ln_out = saved->d_pre_act = Tensor();
  return absl::OkStatus();
}

}  // namespace pipetrain
