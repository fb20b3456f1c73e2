#include "models/attention_block.h"

#include "core/ops/elementwise.h"
#include "core/ops/linear.h"
#include "core/status_macros.h"

namespace pipetrain {

AttentionBlock::AttentionBlock(ParameterStore& store, const std::string& prefix,
                               const AttentionConfig& config)
    : store_(store), config_(config) {
  const int64_t d = config.d_model;
  auto weight = [&](const char* name, double gain) {
    return store.Add(prefix + "." + name + ".weight", {d, d}, {InitKind::kXavierNormal, gain});
  };
  auto bias = [&](const char* name) {
    return store.Add(prefix + "." + name + ".bias", {d}, {InitKind::kZeros});
  };
  wq_ = weight("q", 1.0);
  bq_ = bias("q");
  wk_ = weight("k", 1.0);
  bk_ = bias("k");
  wv_ = weight("v", config.value_output_gain);
  bv_ = bias("v");
  if (config.norm == NORMFORMER) {
    head_scale_ = store.Add(prefix + ".head_scale", {config.heads}, {InitKind::kOnes});
  }
  if (config.norm == SUBLN) {
    sub_gamma_ = store.Add(prefix + ".sub_ln.gamma", {d}, {InitKind::kOnes});
    sub_beta_ = store.Add(prefix + ".sub_ln.beta", {d}, {InitKind::kZeros});
  }
  wo_ = weight("o", config.value_output_gain);
  bo_ = bias("o");
  if (config.norm == NORMFORMER) {
    post_gamma_ = store.Add(prefix + ".post_attn_ln.gamma", {d}, {InitKind::kOnes});
    post_beta_ = store.Add(prefix + ".post_attn_ln.beta", {d}, {InitKind::kZeros});
  }
}

absl::StatusOr<Tensor> AttentionBlock::Forward(const StepContext& ctx, int layer, const Tensor& h,
                                               const Tensor& memory, const Tensor& key_lengths,
                                               AttentionSaved* saved) const {
  const Tensor& kv_source = config_.cross ? memory : h;
  if (config_.cross && !memory.defined()) {
    return absl::InvalidArgumentError("cross-attention needs the encoder output");
  }
  saved->h = h;
  saved->memory = memory;
  const Tensor bq = store_.param(bq_), bk = store_.param(bk_), bv = store_.param(bv_);
  PT_ASSIGN_OR_RETURN(saved->q, ops::LinearForward(h, store_.param(wq_), &bq));
  PT_ASSIGN_OR_RETURN(saved->k, ops::LinearForward(kv_source, store_.param(wk_), &bk));
  PT_ASSIGN_OR_RETURN(saved->v, ops::LinearForward(kv_source, store_.param(wv_), &bv));

  ops::AttentionOptions& options = saved->options;
  options.heads = config_.heads;
  options.causal = config_.causal;
  options.key_lengths = key_lengths;
  options.dropout = ctx.training ? config_.dropout : 0.0;
  options.rng = ctx.Key(layer, config_.cross ? kSiteCrossAttnProbs : kSiteSelfAttnProbs);
  PT_ASSIGN_OR_RETURN(saved->context, ops::AttentionForward(saved->q, saved->k, saved->v, options,
                                                            &saved->attention));
  Tensor o_in = saved->context;
  if (head_scale_ >= 0) {
    PT_ASSIGN_OR_RETURN(o_in, ops::HeadScaleForward(o_in, store_.param(head_scale_)));
  }
  if (sub_gamma_ >= 0) {
    saved->scaled = o_in;
    PT_ASSIGN_OR_RETURN(
        o_in, ops::LayerNormForward(o_in, store_.param(sub_gamma_), store_.param(sub_beta_),
                                    config_.eps, &saved->sub_ln));
  }
  saved->o_in = o_in;
  const Tensor bo = store_.param(bo_);
  PT_ASSIGN_OR_RETURN(Tensor out, ops::LinearForward(o_in, store_.param(wo_), &bo));
  if (post_gamma_ < 0) return out;
  saved->o_out = out;
  return ops::LayerNormForward(out, store_.param(post_gamma_), store_.param(post_beta_),
                               config_.eps, &saved->post_ln);
}

absl::StatusOr<Tensor> AttentionBlock::BackwardInput(const StepContext& ctx, AttentionSaved* saved,
                                                     const Tensor& dout, Tensor* dmemory) const {
  Tensor d_o_out = dout;
  if (post_gamma_ >= 0) {
    saved->d_post_ln_out = dout;
    PT_ASSIGN_OR_RETURN(
        d_o_out,
        ops::LayerNormBackwardInput(saved->o_out, store_.param(post_gamma_), saved->post_ln, dout));
  }
  saved->d_o_out = d_o_out;
  PT_ASSIGN_OR_RETURN(Tensor d_o_in, ops::LinearBackwardInput(d_o_out, store_.param(wo_)));
  Tensor dcontext = d_o_in;
  if (sub_gamma_ >= 0) {
    saved->d_sub_ln_out = d_o_in;
    PT_ASSIGN_OR_RETURN(dcontext,
                        ops::LayerNormBackwardInput(saved->scaled, store_.param(sub_gamma_),
                                                    saved->sub_ln, d_o_in));
  }
  if (head_scale_ >= 0) {
    saved->d_scaled = dcontext;
    PT_ASSIGN_OR_RETURN(dcontext, ops::HeadScaleBackwardInput(store_.param(head_scale_), dcontext));
  }
  PT_RETURN_IF_ERROR(ops::AttentionBackward(saved->q, saved->k, saved->v, saved->options,
                                            saved->attention, dcontext, &saved->dq, &saved->dk,
                                            &saved->dv));
  PT_ASSIGN_OR_RETURN(Tensor dh, ops::LinearBackwardInput(saved->dq, store_.param(wq_)));
  PT_ASSIGN_OR_RETURN(Tensor dk_src, ops::LinearBackwardInput(saved->dk, store_.param(wk_)));
  PT_ASSIGN_OR_RETURN(Tensor dv_src, ops::LinearBackwardInput(saved->dv, store_.param(wv_)));
  if (config_.cross) {
    if (!dmemory->defined()) *dmemory = Tensor::Zeros(saved->memory.shape(), dk_src.dtype(), dk_src.device());
    PT_RETURN_IF_ERROR(ops::Axpy(1.0, dk_src, *dmemory));
    PT_RETURN_IF_ERROR(ops::Axpy(1.0, dv_src, *dmemory));
  } else {
    PT_RETURN_IF_ERROR(ops::Axpy(1.0, dk_src, dh));
    PT_RETURN_IF_ERROR(ops::Axpy(1.0, dv_src, dh));
  }
  return dh;
}

absl::Status AttentionBlock::BackwardWeight(AttentionSaved* saved) const {
  const Tensor& kv_source = config_.cross ? saved->memory : saved->h;
  Tensor dbq = store_.grad(bq_), dbk = store_.grad(bk_), dbv = store_.grad(bv_),
         dbo = store_.grad(bo_);
  Tensor dwq = store_.grad(wq_), dwk = store_.grad(wk_), dwv = store_.grad(wv_),
         dwo = store_.grad(wo_);
  PT_RETURN_IF_ERROR(ops::LinearBackwardWeight(saved->h, saved->dq, dwq, &dbq));
  PT_RETURN_IF_ERROR(ops::LinearBackwardWeight(kv_source, saved->dk, dwk, &dbk));
  PT_RETURN_IF_ERROR(ops::LinearBackwardWeight(kv_source, saved->dv, dwv, &dbv));
  PT_RETURN_IF_ERROR(ops::LinearBackwardWeight(saved->o_in, saved->d_o_out, dwo, &dbo));
  if (post_gamma_ >= 0) {
    Tensor dg = store_.grad(post_gamma_), db = store_.grad(post_beta_);
    PT_RETURN_IF_ERROR(
        ops::LayerNormBackwardWeight(saved->o_out, saved->post_ln, saved->d_post_ln_out, dg, db));
  }
  if (sub_gamma_ >= 0) {
    Tensor dg = store_.grad(sub_gamma_), db = store_.grad(sub_beta_);
    PT_RETURN_IF_ERROR(
        ops::LayerNormBackwardWeight(saved->scaled, saved->sub_ln, saved->d_sub_ln_out, dg, db));
  }
  if (head_scale_ >= 0) {
    Tensor ds = store_.grad(head_scale_);
    PT_RETURN_IF_ERROR(ops::HeadScaleBackwardWeight(saved->context, saved->d_scaled, ds));
  }
  // The recorded gradients are no longer needed.
  saved->dq = saved->dk = saved->dv = saved->d_o_out = Tensor();
  saved->d_post_ln_out = saved->d_sub_ln_out = saved->d_scaled = Tensor();
  return absl::OkStatus();
}

}  // namespace pipetrain
