#include "models/transformer_layer.h"

#include "core/ops/elementwise.h"
#include "core/status_macros.h"

namespace pipetrain {
namespace {

JoinConfig MakeJoin(const LayerConfig& c) {
  return JoinConfig{.d_model = c.d_model,
                    .norm = c.norm,
                    .alpha = c.alpha,
                    .eps = c.eps,
                    .dropout = c.residual_dropout,
                    .branch = c.branch};
}

AttentionConfig MakeAttention(const LayerConfig& c, bool cross) {
  return AttentionConfig{.d_model = c.d_model,
                         .heads = c.heads,
                         .causal = cross ? false : c.causal,
                         .cross = cross,
                         .norm = c.norm,
                         .value_output_gain = c.beta,
                         .dropout = c.attention_dropout,
                         .eps = c.eps};
}

FfnConfig MakeFfn(const LayerConfig& c) {
  return FfnConfig{.d_model = c.d_model,
                   .ffn_dim = c.ffn_dim,
                   .activation = c.activation,
                   .norm = c.norm,
                   .gain = c.beta,
                   .dropout = c.activation_dropout,
                   .eps = c.eps};
}

}  // namespace

// Parameters are registered in execution order: self-attention, cross-attention, FFN.
TransformerLayer::TransformerLayer(ParameterStore& store, const std::string& prefix,
                                   const LayerConfig& config)
    : config_(config),
      self_join_(store, prefix + ".self_attn", MakeJoin(config)),
      self_attn_(store, prefix + ".self_attn", MakeAttention(config, /*cross=*/false)),
      cross_join_(config.cross ? std::make_unique<ResidualJoin>(store, prefix + ".cross_attn",
                                                                MakeJoin(config))
                               : nullptr),
      cross_attn_(config.cross ? std::make_unique<AttentionBlock>(store, prefix + ".cross_attn",
                                                                  MakeAttention(config, true))
                               : nullptr),
      ffn_join_(store, prefix + ".ffn", MakeJoin(config)),
      ffn_(store, prefix + ".ffn", MakeFfn(config)) {}

absl::StatusOr<Tensor> TransformerLayer::Forward(const StepContext& ctx, const Tensor& x,
                                                 const Tensor& self_lengths, const Tensor& memory,
                                                 const Tensor& memory_lengths,
                                                 LayerSaved* saved) const {
  const int layer = config_.index;
  // Causal attention never sees a later (padding) key, so only bidirectional
  // self-attention needs the lengths.
  const Tensor no_lengths;
  const Tensor& self_keys = config_.causal ? no_lengths : self_lengths;
  PT_ASSIGN_OR_RETURN(Tensor h, self_join_.Enter(ctx, x, &saved->self_join));
  PT_ASSIGN_OR_RETURN(Tensor f,
                      self_attn_.Forward(ctx, layer, h, Tensor(), self_keys, &saved->self_attn));
  PT_ASSIGN_OR_RETURN(Tensor y,
                      self_join_.Exit(ctx, layer, kSiteSelfAttnOut, f, &saved->self_join));
  if (cross_attn_) {
    PT_ASSIGN_OR_RETURN(h, cross_join_->Enter(ctx, y, &saved->cross_join));
    PT_ASSIGN_OR_RETURN(
        f, cross_attn_->Forward(ctx, layer, h, memory, memory_lengths, &saved->cross_attn));
    PT_ASSIGN_OR_RETURN(y, cross_join_->Exit(ctx, layer, kSiteCrossAttnOut, f, &saved->cross_join));
  }
  PT_ASSIGN_OR_RETURN(h, ffn_join_.Enter(ctx, y, &saved->ffn_join));
  PT_ASSIGN_OR_RETURN(f, ffn_.Forward(ctx, layer, h, &saved->ffn));
  return ffn_join_.Exit(ctx, layer, kSiteFfnOut, f, &saved->ffn_join);
}

absl::StatusOr<Tensor> TransformerLayer::BackwardInput(const StepContext& ctx, LayerSaved* saved,
                                                       const Tensor& dy, Tensor* dmemory) const {
  const int layer = config_.index;
  Tensor dx_res, df;
  PT_RETURN_IF_ERROR(
      ffn_join_.ExitBackward(ctx, layer, kSiteFfnOut, dy, &saved->ffn_join, &dx_res, &df));
  PT_ASSIGN_OR_RETURN(Tensor dh, ffn_.BackwardInput(ctx, layer, &saved->ffn, df));
  PT_ASSIGN_OR_RETURN(Tensor dx_branch, ffn_join_.EnterBackward(dh, &saved->ffn_join));
  PT_ASSIGN_OR_RETURN(Tensor d, ops::AddScaled(1.0, dx_res, 1.0, dx_branch));
  if (cross_attn_) {
    PT_RETURN_IF_ERROR(cross_join_->ExitBackward(ctx, layer, kSiteCrossAttnOut, d,
                                                 &saved->cross_join, &dx_res, &df));
    PT_ASSIGN_OR_RETURN(dh, cross_attn_->BackwardInput(ctx, &saved->cross_attn, df, dmemory));
    PT_ASSIGN_OR_RETURN(dx_branch, cross_join_->EnterBackward(dh, &saved->cross_join));
    PT_ASSIGN_OR_RETURN(d, ops::AddScaled(1.0, dx_res, 1.0, dx_branch));
  }
  PT_RETURN_IF_ERROR(
      self_join_.ExitBackward(ctx, layer, kSiteSelfAttnOut, d, &saved->self_join, &dx_res, &df));
  PT_ASSIGN_OR_RETURN(dh, self_attn_.BackwardInput(ctx, &saved->self_attn, df, nullptr));
  PT_ASSIGN_OR_RETURN(dx_branch, self_join_.EnterBackward(dh, &saved->self_join));
  return ops::AddScaled(1.0, dx_res, 1.0, dx_branch);
}

absl::Status TransformerLayer::BackwardWeight(LayerSaved* saved) const {
  PT_RETURN_IF_ERROR(self_join_.BackwardWeight(&saved->self_join));
  PT_RETURN_IF_ERROR(self_attn_.BackwardWeight(&saved->self_attn));
  if (cross_attn_) {
    PT_RETURN_IF_ERROR(cross_join_->BackwardWeight(&saved->cross_join));
    PT_RETURN_IF_ERROR(cross_attn_->BackwardWeight(&saved->cross_attn));
  }
  PT_RETURN_IF_ERROR(ffn_join_.BackwardWeight(&saved->ffn_join));
  return ffn_.BackwardWeight(&saved->ffn);
}

}  // namespace pipetrain
