#include "models/residual_join.h"

#include <algorithm>

#include "core/ops/dropout.h"
#include "core/ops/elementwise.h"
#include "core/status_macros.h"

namespace pipetrain {

bool IsPreNorm(ResidualNorm norm) { return norm == PRE_LN || norm == NORMFORMER || norm == SUBLN; }

ResidualJoin::ResidualJoin(ParameterStore& store, const std::string& prefix,
                           const JoinConfig& config)
    : store_(store), config_(config) {
  pre_ln_ = IsPreNorm(config.norm);
  post_ln_ = !pre_ln_;
  const Shape shape{config.d_model};
  const std::string name = prefix + (pre_ln_ ? ".pre_ln" : ".post_ln");
  ParamId gamma = store.Add(name + ".gamma", shape, {InitKind::kOnes});
  ParamId beta = store.Add(name + ".beta", shape, {InitKind::kZeros});
  if (pre_ln_) {
    pre_gamma_ = gamma;
    pre_beta_ = beta;
  } else {
    post_gamma_ = gamma;
    post_beta_ = beta;
  }
}

double ResidualJoin::BranchProgress(int64_t step) const {
  const double t = static_cast<double>(step);
  const double T = static_cast<double>(std::max<int64_t>(config_.branch.max_norm_step(), 1));
  return std::min(t / T, 1.0);
}

absl::StatusOr<Tensor> ResidualJoin::Enter(const StepContext& ctx, const Tensor& x,
                                           JoinSaved* saved) const {
  saved->x = x;
  if (!pre_ln_) return x;
  return ops::LayerNormForward(x, store_.param(pre_gamma_), store_.param(pre_beta_), config_.eps,
                               &saved->pre_ln);
}

absl::StatusOr<Tensor> ResidualJoin::Exit(const StepContext& ctx, int layer, int site,
                                          const Tensor& f_in, JoinSaved* saved) const {
  const double p = ctx.training ? config_.dropout : 0.0;
  PT_ASSIGN_OR_RETURN(Tensor f, ops::DropoutForward(f_in, p, ctx.Key(layer, site)));
  saved->branch_scale = 1.0;
  saved->power_norm = false;
  if (config_.norm == BRANCHNORM) {
    const double progress = BranchProgress(ctx.step);
    if (config_.branch.shape() == NORMALIZED_POWER) {
      if (progress < 1.0) {
        saved->f = f;
        saved->power_norm = true;
        PT_ASSIGN_OR_RETURN(f,
                            ops::PowerNormForward(f, 1.0 - progress, config_.eps, &saved->power));
      }
    } else {
      const double a0 = config_.branch.start_scale();
      saved->branch_scale = a0 + (1.0 - a0) * progress;
    }
  }
  PT_ASSIGN_OR_RETURN(Tensor s, ops::AddScaled(config_.alpha, saved->x, saved->branch_scale, f));
  if (!post_ln_) return s;
  saved->s = s;
  return ops::LayerNormForward(s, store_.param(post_gamma_), store_.param(post_beta_), config_.eps,
                               &saved->post_ln);
}

absl::Status ResidualJoin::ExitBackward(const StepContext& ctx, int layer, int site,
                                        const Tensor& dy, JoinSaved* saved, Tensor* dx_residual,
                                        Tensor* df) const {
  Tensor ds = dy;
  if (post_ln_) {
    saved->d_post_ln_out = dy;
    PT_ASSIGN_OR_RETURN(
        ds, ops::LayerNormBackwardInput(saved->s, store_.param(post_gamma_), saved->post_ln, dy));
  }
  PT_ASSIGN_OR_RETURN(*dx_residual, ops::Scale(ds, config_.alpha));
  Tensor d_branch;
  if (saved->power_norm) {
    PT_ASSIGN_OR_RETURN(d_branch, ops::PowerNormBackward(saved->f, saved->power, ds));
  } else if (saved->branch_scale != 1.0) {
    PT_ASSIGN_OR_RETURN(d_branch, ops::Scale(ds, saved->branch_scale));
  } else {
    d_branch = ds;
  }
  const double p = ctx.training ? config_.dropout : 0.0;
  PT_ASSIGN_OR_RETURN(*df, ops::DropoutBackward(d_branch, p, ctx.Key(layer, site)));
  return absl::OkStatus();
}

absl::StatusOr<Tensor> ResidualJoin::EnterBackward(const Tensor& dh, JoinSaved* saved) const {
  if (!pre_ln_) return dh;
  saved->d_pre_ln_out = dh;
  return ops::LayerNormBackwardInput(saved->x, store_.param(pre_gamma_), saved->pre_ln, dh);
}

absl::Status ResidualJoin::BackwardWeight(JoinSaved* saved) const {
  if (saved->d_post_ln_out.defined()) {
    Tensor dg = store_.grad(post_gamma_), db = store_.grad(post_beta_);
    PT_RETURN_IF_ERROR(
        ops::LayerNormBackwardWeight(saved->s, saved->post_ln, saved->d_post_ln_out, dg, db));
    saved->d_post_ln_out = Tensor();
  }
  if (saved->d_pre_ln_out.defined()) {
    Tensor dg = store_.grad(pre_gamma_), db = store_.grad(pre_beta_);
    PT_RETURN_IF_ERROR(
        ops::LayerNormBackwardWeight(saved->x, saved->pre_ln, saved->d_pre_ln_out, dg, db));
    saved->d_pre_ln_out = Tensor();
  }
  return absl::OkStatus();
}

}  // namespace pipetrain
