#include "models/transformer_model.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/config/spec_loader.h"
#include "core/ops/dropout.h"
#include "core/ops/elementwise.h"
#include "core/ops/embedding.h"
#include "core/ops/layer_norm.h"
#include "core/ops/linear.h"
#include "core/status_macros.h"
#include "models/norm_constants.h"

namespace pipetrain {
namespace {

ops::ActivationKind ActivationOf(const ModelSpec& spec) {
  return spec.activation() == RELU ? ops::ActivationKind::kRelu : ops::ActivationKind::kGelu;
}

// Flattens [B, T, d] to [B·T, d] and labels [B, T] to [B·T].
Tensor Rows(const Tensor& t) { return t.Reshape({t.numel() / t.dim(-1), t.dim(-1)}); }

}  // namespace

TransformerModel::TransformerModel(const ModelSpec& spec, DType dtype)
    : spec_(spec), store_(std::make_unique<ParameterStore>(dtype)) {}

absl::StatusOr<std::unique_ptr<TransformerModel>> TransformerModel::Create(const ModelSpec& spec,
                                                                           DType dtype,
                                                                           uint64_t seed) {
  if (dtype != DType::kF32 && dtype != DType::kF64) {
    return absl::InvalidArgumentError(
        absl::StrCat("the CPU model computes in f32 or f64, not ", DTypeName(dtype)));
  }
  std::unique_ptr<TransformerModel> model(new TransformerModel(spec, dtype));
  PT_RETURN_IF_ERROR(model->Build());
  model->store_->Finalize();
  model->store_->Initialize(seed);
  return model;
}

absl::Status TransformerModel::Build() {
  const int64_t d = spec_.d_model();
  const int64_t vocab = spec_.vocab_size();
  embed_scale_ = std::sqrt(static_cast<double>(d));
  eps_ = spec_.layer_norm_eps() > 0 ? spec_.layer_norm_eps() : 1e-5;
  ParameterStore& store = *store_;
  embedding_ = store.Add("embed.weight", {vocab, d}, {InitKind::kNormal, 1.0 / embed_scale_});
  output_ = embedding_;

  const int n_enc = spec_.encoder_layers();
  const int n_dec = spec_.decoder_layers();
  auto layer_config = [&](Stack stack, int i) -> absl::StatusOr<LayerConfig> {
    PT_ASSIGN_OR_RETURN(ResidualNorm norm, NormForLayer(spec_, stack, i));
    const NormConstants constants = ResolveNormConstants(spec_, norm);
    const StackConstants& sc = stack == ENCODER ? constants.encoder : constants.decoder;
    LayerConfig c;
    c.d_model = d;
    c.ffn_dim = spec_.ffn_dim();
    c.heads = spec_.heads();
    c.activation = ActivationOf(spec_);
    c.norm = norm;
    c.alpha = sc.alpha;
    c.beta = sc.beta;
    c.branch = spec_.branch_norm();
    c.attention_dropout = spec_.attention_dropout();
    c.activation_dropout = spec_.activation_dropout();
    c.residual_dropout = spec_.residual_dropout();
    c.eps = eps_;
    c.causal = stack == DECODER;
    c.cross = stack == DECODER && n_enc > 0;
    // Global index 0 keys the embeddings' dropout; layers count from 1.
    c.index = 1 + (stack == ENCODER ? i : n_enc + i);
    return c;
  };
  for (int i = 0; i < n_enc; ++i) {
    PT_ASSIGN_OR_RETURN(LayerConfig c, layer_config(ENCODER, i));
    encoder_.push_back(std::make_unique<TransformerLayer>(store, absl::StrCat("encoder.", i), c));
  }
  if (n_enc > 0 && IsPreNorm(encoder_.back()->config().norm)) {
    enc_final_gamma_ = store.Add("encoder.final_ln.gamma", {d}, {InitKind::kOnes});
    enc_final_beta_ = store.Add("encoder.final_ln.beta", {d}, {InitKind::kZeros});
  }
  for (int i = 0; i < n_dec; ++i) {
    PT_ASSIGN_OR_RETURN(LayerConfig c, layer_config(DECODER, i));
    decoder_.push_back(std::make_unique<TransformerLayer>(store, absl::StrCat("decoder.", i), c));
  }
  if (n_dec > 0 && IsPreNorm(decoder_.back()->config().norm)) {
    dec_final_gamma_ = store.Add("decoder.final_ln.gamma", {d}, {InitKind::kOnes});
    dec_final_beta_ = store.Add("decoder.final_ln.beta", {d}, {InitKind::kZeros});
  }
  const bool tied = !spec_.has_tied_embeddings() || spec_.tied_embeddings();
  if (!tied) {
    output_ = store.Add("output.weight", {vocab, d}, {InitKind::kNormal, 1.0 / embed_scale_});
  }
  return absl::OkStatus();
}

absl::StatusOr<Tensor> TransformerModel::Embed(const StepContext& ctx, const Tensor& ids,
                                               int site) const {
  PT_ASSIGN_OR_RETURN(Tensor x,
                      ops::EmbeddingForward(ids, store_->param(embedding_), embed_scale_));
  PT_RETURN_IF_ERROR(ops::AddSinusoidalPositions(x));
  const double p = ctx.training ? spec_.residual_dropout() : 0.0;
  return ops::DropoutForward(x, p, ctx.Key(0, site));
}

absl::Status TransformerModel::EmbedBackward(const StepContext& ctx, const Tensor& ids, int site,
                                             const Tensor& dy) const {
  const double p = ctx.training ? spec_.residual_dropout() : 0.0;
  PT_ASSIGN_OR_RETURN(Tensor dx, ops::DropoutBackward(dy, p, ctx.Key(0, site)));
  Tensor dtable = store_->grad(embedding_);
  return ops::EmbeddingBackwardWeight(ids, dx, embed_scale_, dtable);
}

absl::StatusOr<ops::CrossEntropyStats> TransformerModel::Forward(const StepContext& ctx,
                                                                 const Batch& batch,
                                                                 ModelSaved* saved) const {
  saved->encoder.assign(encoder_.size(), LayerSaved());
  saved->decoder.assign(decoder_.size(), LayerSaved());
  const Tensor none;
  Tensor top;
  if (!encoder_.empty()) {
    PT_ASSIGN_OR_RETURN(Tensor x, Embed(ctx, batch.src_ids, kSiteEmbedding));
    for (size_t i = 0; i < encoder_.size(); ++i) {
      PT_ASSIGN_OR_RETURN(
          x, encoder_[i]->Forward(ctx, x, batch.src_lengths, none, none, &saved->encoder[i]));
    }
    if (enc_final_gamma_ >= 0) {
      saved->encoder_top = x;
      PT_ASSIGN_OR_RETURN(
          x, ops::LayerNormForward(x, store_->param(enc_final_gamma_),
                                   store_->param(enc_final_beta_), eps_, &saved->encoder_final_ln));
    }
    saved->memory = x;
    top = x;
  }
  if (!decoder_.empty()) {
    PT_ASSIGN_OR_RETURN(Tensor y, Embed(ctx, batch.tgt_in, kSiteDecoderEmbedding));
    for (size_t i = 0; i < decoder_.size(); ++i) {
      PT_ASSIGN_OR_RETURN(y, decoder_[i]->Forward(ctx, y, batch.tgt_lengths, saved->memory,
                                                  batch.src_lengths, &saved->decoder[i]));
    }
    if (dec_final_gamma_ >= 0) {
      saved->decoder_top = y;
      PT_ASSIGN_OR_RETURN(
          y, ops::LayerNormForward(y, store_->param(dec_final_gamma_),
                                   store_->param(dec_final_beta_), eps_, &saved->decoder_final_ln));
    }
    top = y;
  }
  saved->hidden = Rows(top);
  saved->labels = batch.labels.Reshape({batch.labels.numel()});
  if (saved->labels.numel() != saved->hidden.dim(0)) {
    return absl::InvalidArgumentError(absl::StrCat("labels ", ShapeString(batch.labels.shape()),
                                                   " do not match the model output ",
                                                   ShapeString(top.shape())));
  }
  PT_ASSIGN_OR_RETURN(saved->logits,
                      ops::LinearForward(saved->hidden, store_->param(output_), nullptr));
  return ops::CrossEntropyForward(saved->logits, saved->labels, spec_.label_smoothing(), kPadId,
                                  &saved->loss);
}

absl::Status TransformerModel::Backward(const StepContext& ctx, const Batch& batch,
                                        ModelSaved* saved, double grad_scale) const {
  PT_ASSIGN_OR_RETURN(Tensor dlogits, ops::CrossEntropyBackward(saved->logits, saved->labels,
                                                                spec_.label_smoothing(), kPadId,
                                                                saved->loss, grad_scale));
  saved->logits = Tensor();  // the largest activation; free it early
  Tensor doutput = store_->grad(output_);
  PT_RETURN_IF_ERROR(ops::LinearBackwardWeight(saved->hidden, dlogits, doutput, nullptr));
  PT_ASSIGN_OR_RETURN(Tensor dtop_rows, ops::LinearBackwardInput(dlogits, store_->param(output_)));

  Tensor dmemory;
  if (!decoder_.empty()) {
    Tensor dy = dtop_rows.Reshape({batch.tgt_in.dim(0), batch.tgt_in.dim(1), spec_.d_model()});
    if (dec_final_gamma_ >= 0) {
      Tensor dg = store_->grad(dec_final_gamma_), db = store_->grad(dec_final_beta_);
      PT_RETURN_IF_ERROR(
          ops::LayerNormBackwardWeight(saved->decoder_top, saved->decoder_final_ln, dy, dg, db));
      PT_ASSIGN_OR_RETURN(
          dy, ops::LayerNormBackwardInput(saved->decoder_top, store_->param(dec_final_gamma_),
                                          saved->decoder_final_ln, dy));
    }
    for (size_t i = decoder_.size(); i-- > 0;) {
      PT_ASSIGN_OR_RETURN(dy, decoder_[i]->BackwardInput(ctx, &saved->decoder[i], dy, &dmemory));
      PT_RETURN_IF_ERROR(decoder_[i]->BackwardWeight(&saved->decoder[i]));
      saved->decoder[i] = LayerSaved();
    }
    PT_RETURN_IF_ERROR(EmbedBackward(ctx, batch.tgt_in, kSiteDecoderEmbedding, dy));
  } else {
    dmemory = dtop_rows.Reshape(saved->memory.shape());
  }
  if (!encoder_.empty()) {
    Tensor dx = dmemory;
    if (enc_final_gamma_ >= 0) {
      Tensor dg = store_->grad(enc_final_gamma_), db = store_->grad(enc_final_beta_);
      PT_RETURN_IF_ERROR(
          ops::LayerNormBackwardWeight(saved->encoder_top, saved->encoder_final_ln, dx, dg, db));
      PT_ASSIGN_OR_RETURN(
          dx, ops::LayerNormBackwardInput(saved->encoder_top, store_->param(enc_final_gamma_),
                                          saved->encoder_final_ln, dx));
    }
    for (size_t i = encoder_.size(); i-- > 0;) {
      PT_ASSIGN_OR_RETURN(dx, encoder_[i]->BackwardInput(ctx, &saved->encoder[i], dx, nullptr));
      PT_RETURN_IF_ERROR(encoder_[i]->BackwardWeight(&saved->encoder[i]));
      saved->encoder[i] = LayerSaved();
    }
    PT_RETURN_IF_ERROR(EmbedBackward(ctx, batch.src_ids, kSiteEmbedding, dx));
  }
  return absl::OkStatus();
}

}  // namespace pipetrain
