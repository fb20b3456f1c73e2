#include "models/model_stage.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/config/spec_loader.h"
#include "core/device.h"
#include "core/ops/dropout.h"
#include "core/ops/elementwise.h"
#include "core/ops/embedding.h"
#include "core/ops/layer_norm.h"
#include "core/ops/linear.h"
#include "core/optim/grad_clip.h"
#include "core/status_macros.h"
#include "models/norm_constants.h"

namespace pipetrain {
namespace {

ops::ActivationKind ActivationOf(const ModelSpec& spec) {
  return spec.activation() == RELU ? ops::ActivationKind::kRelu : ops::ActivationKind::kGelu;
}

// [B, T, d] → [B·T, d].
Tensor Rows(const Tensor& t) { return t.Reshape({t.numel() / t.dim(-1), t.dim(-1)}); }

}  // namespace

ModelStage::ModelStage(const ModelSpec& spec, DType dtype, int first, int last, Device device)
    : spec_(spec),
      // bf16 computes from a copy of f32 master weights (DESIGN.md decision 3).
      store_(std::make_unique<ParameterStore>(dtype == DType::kBF16 ? DType::kF32 : dtype, device,
                                              dtype)),
      first_(first),
      last_(last) {}

absl::StatusOr<std::unique_ptr<ModelStage>> ModelStage::Create(const ModelSpec& spec, DType dtype,
                                                               uint64_t seed, int first_layer,
                                                               int last_layer, Device device) {
  if (device != Device::kCuda && dtype != DType::kF32 && dtype != DType::kF64) {
    // The emulated device runs the CPU kernels, so it computes as the CPU does.
    return absl::InvalidArgumentError(absl::StrCat(
        "the ", DeviceName(device), " model computes in f32 or f64, not ", DTypeName(dtype)));
  }
  if (device == Device::kCuda) {
    if (dtype != DType::kF32 && dtype != DType::kBF16) {
      return absl::InvalidArgumentError(
          absl::StrCat("the GPU model computes in bf16 or f32, not ", DTypeName(dtype)));
    }
    // Fail here, with the reason, rather than at the first device tensor.
    PT_RETURN_IF_ERROR(CurrentCudaDevice().status());
  }
  const int total = spec.encoder_layers() + spec.decoder_layers();
  if (first_layer < 0 || first_layer >= last_layer || last_layer > total) {
    return absl::InvalidArgumentError(absl::StrCat("stage layer range [", first_layer, ", ",
                                                   last_layer, ") is not inside [0, ", total,
                                                   ") or is empty"));
  }
  std::unique_ptr<ModelStage> stage(new ModelStage(spec, dtype, first_layer, last_layer, device));
  PT_RETURN_IF_ERROR(stage->Build());
  stage->store_->Finalize();
  stage->store_->Initialize(seed);
  stage->ZeroGrads();
  return stage;
}

absl::Status ModelStage::Build() {
  const int64_t d = spec_.d_model();
  const int64_t vocab = spec_.vocab_size();
  const int n_enc = spec_.encoder_layers();
  const int n_dec = spec_.decoder_layers();
  const int total = n_enc + n_dec;
  const bool tied = !spec_.has_tied_embeddings() || spec_.tied_embeddings();
  embed_scale_ = std::sqrt(static_cast<double>(d));
  eps_ = spec_.layer_norm_eps() > 0 ? spec_.layer_norm_eps() : 1e-5;
  src_embed_ = n_enc > 0 && first_ == 0;
  tgt_embed_ = n_dec > 0 && first_ <= n_enc && n_enc < last_;
  has_head_ = last_ == total;
  ParameterStore& store = *store_;

  if (src_embed_ || tgt_embed_ || (has_head_ && tied)) {
    embedding_ = store.Add("embed.weight", {vocab, d}, {InitKind::kNormal, 1.0 / embed_scale_});
    const Shape shape{vocab, d};
    const DType dt = store.dtype();
    const Device dev = store.device();
    if (src_embed_) embedding_partials_[kSourceUse] = Tensor::Zeros(shape, dt, dev);
    if (tgt_embed_) embedding_partials_[kTargetUse] = Tensor::Zeros(shape, dt, dev);
    if (has_head_ && tied) embedding_partials_[kOutputUse] = Tensor::Zeros(shape, dt, dev);
  }
  for (int g = first_; g < last_; ++g) {
    const bool decoder = g >= n_enc;
    const int i = decoder ? g - n_enc : g;
    const Stack stack = decoder ? DECODER : ENCODER;
    PT_ASSIGN_OR_RETURN(ResidualNorm norm, NormForLayer(spec_, stack, i));
    const NormConstants constants = ResolveNormConstants(spec_, norm);
    const StackConstants& sc = decoder ? constants.decoder : constants.encoder;
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
    c.causal = decoder;
    c.cross = decoder && n_enc > 0;
    // Global index 0 keys the embeddings' dropout; layers count from 1.
    c.index = 1 + g;
    const ParamId first_param = static_cast<ParamId>(store.infos().size());
    layers_.push_back(std::make_unique<TransformerLayer>(
        store, absl::StrCat(decoder ? "decoder." : "encoder.", i), c));
    layer_params_.push_back({first_param, static_cast<ParamId>(store.infos().size())});
    // A stack's final LN follows its last layer when that layer is pre-norm.
    if (g == total - 1 || g == n_enc - 1) {
      if (IsPreNorm(norm)) {
        const std::string prefix = decoder ? "decoder.final_ln" : "encoder.final_ln";
        ParamId gamma = store.Add(prefix + ".gamma", {d}, {InitKind::kOnes});
        ParamId beta = store.Add(prefix + ".beta", {d}, {InitKind::kZeros});
        (decoder ? dec_final_gamma_ : enc_final_gamma_) = gamma;
        (decoder ? dec_final_beta_ : enc_final_beta_) = beta;
      }
    }
  }
  if (has_head_) {
    output_ = tied
                  ? embedding_
                  : store.Add("output.weight", {vocab, d}, {InitKind::kNormal, 1.0 / embed_scale_});
  }
  return absl::OkStatus();
}

void ModelStage::ZeroGrads() {
  store_->ZeroGrads();
  for (Tensor& partial : embedding_partials_) {
    if (partial.defined()) partial.Zero();
  }
}

absl::Status ModelStage::SetRecompute(std::vector<bool> per_layer) {
  if (!per_layer.empty() && per_layer.size() != layers_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("recompute flags for ", per_layer.size(),
                                                   " layers given to a stage of ", layers_.size(),
                                                   " layers"));
  }
  recompute_ = std::move(per_layer);
  return absl::OkStatus();
}

StageBoundary ModelStage::ShapesAt(int layer, const Batch& batch) const {
  StageBoundary shapes;
  const int n_enc = encoder_layers();
  if (layer == 0 || layer >= n_enc + spec_.decoder_layers()) return shapes;
  const int64_t d = spec_.d_model();
  auto like = [&](const Tensor& ids) {
    return Tensor::Empty({ids.dim(0), ids.dim(1), d}, store_->compute_dtype(), store_->device());
  };
  if (layer < n_enc) {
    shapes.hidden = like(batch.src_ids);
  } else {
    if (n_enc > 0) shapes.memory = like(batch.src_ids);
    if (layer > n_enc) shapes.hidden = like(batch.tgt_in);
  }
  return shapes;
}

absl::StatusOr<Tensor> ModelStage::LayerForward(const StepContext& ctx, const Batch& batch,
                                                int layer, const Tensor& x, const Tensor& memory,
                                                LayerSaved* saved) const {
  const TransformerLayer& l = *layers_[layer - first_];
  if (layer < encoder_layers()) {
    return l.Forward(ctx, x, batch.src_lengths, Tensor(), Tensor(), saved);
  }
  return l.Forward(ctx, x, batch.tgt_lengths, memory, batch.src_lengths, saved);
}

absl::StatusOr<StageBoundary> ModelStage::Forward(const StepContext& ctx, const Batch& batch,
                                                  const StageBoundary& input,
                                                  StageSaved* saved) const {
  const int n_enc = encoder_layers();
  const int total = n_enc + spec_.decoder_layers();
  const double p = ctx.training ? spec_.residual_dropout() : 0.0;
  auto embed = [&](const Tensor& ids, int site) -> absl::StatusOr<Tensor> {
    const int64_t max_positions = spec_.max_positions() > 0 ? spec_.max_positions() : 1024;
    if (ids.dim(1) > max_positions) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a batch holds sequences of ", ids.dim(1), " tokens but model.max_positions is ",
          max_positions, "; raise model.max_positions or shorten the data"));
    }
    PT_ASSIGN_OR_RETURN(Tensor x,
                        ops::EmbeddingForward(ids, store_->param(embedding_), embed_scale_));
    PT_RETURN_IF_ERROR(ops::AddSinusoidalPositions(x));
    return ops::DropoutForward(x, p, ctx.Key(0, site));
  };
  Tensor x = input.hidden;
  Tensor memory = input.memory;
  saved->layers.assign(layers_.size(), LayerSaved());
  for (int g = first_; g < last_; ++g) {
    if (g == 0 && n_enc > 0) {
      PT_ASSIGN_OR_RETURN(x, embed(batch.src_ids, kSiteEmbedding));
    }
    if (g == n_enc) {
      PT_ASSIGN_OR_RETURN(x, embed(batch.tgt_in, kSiteDecoderEmbedding));
    }
    const int i = g - first_;
    const bool recompute = !recompute_.empty() && recompute_[i] && !forward_only_;
    if (recompute) {
      saved->layer_inputs.resize(layers_.size());
      saved->layer_inputs[i] = x;
      saved->memory = memory;
    }
    PT_ASSIGN_OR_RETURN(x, LayerForward(ctx, batch, g, x, memory, &saved->layers[i]));
    // Rebuilt in backward, or never needed.
    if (recompute || forward_only_) saved->layers[i] = LayerSaved();
    if (residual_sums_.defined()) {
      // Only on a statistics step: one reduction into this layer's slot.
      const Tensor out = x.dtype() == DType::kBF16 ? x.To(DType::kF32) : x;
      PT_ASSIGN_OR_RETURN(const Tensor sq, SegmentSumsOfSquaresOnDevice(out.Reshape({out.numel()}),
                                                                        {{0, out.numel()}}));
      Tensor slot = residual_sums_.View(i, {1});
      PT_RETURN_IF_ERROR(ops::Axpy(1.0, sq, slot));
      residual_counts_[i] += static_cast<double>(out.numel());
    }
    if (g == n_enc - 1) {
      if (enc_final_gamma_ >= 0) {
        saved->encoder_top = x;
        PT_ASSIGN_OR_RETURN(x, ops::LayerNormForward(x, store_->param(enc_final_gamma_),
                                                     store_->param(enc_final_beta_), eps_,
                                                     &saved->encoder_final_ln));
      }
      memory = x;  // the encoder's output: the decoder's memory (or the head's input)
      x = Tensor();
    }
    if (g == total - 1 && g >= n_enc && dec_final_gamma_ >= 0) {
      saved->decoder_top = x;
      PT_ASSIGN_OR_RETURN(
          x, ops::LayerNormForward(x, store_->param(dec_final_gamma_),
                                   store_->param(dec_final_beta_), eps_, &saved->decoder_final_ln));
    }
  }
  if (!has_head_) return StageBoundary{x, memory};

  const Tensor& top = spec_.decoder_layers() > 0 ? x : memory;
  saved->hidden = Rows(top);
  saved->labels = batch.labels.Reshape({batch.labels.numel()});
  if (saved->labels.numel() != saved->hidden.dim(0)) {
    return absl::InvalidArgumentError(absl::StrCat("labels ", ShapeString(batch.labels.shape()),
                                                   " do not match the model output ",
                                                   ShapeString(top.shape())));
  }
  PT_ASSIGN_OR_RETURN(saved->logits,
                      ops::LinearForward(saved->hidden, store_->param(output_), nullptr));
  PT_ASSIGN_OR_RETURN(
      saved->stats, ops::CrossEntropyForward(
                        saved->logits, saved->labels, spec_.label_smoothing(), kPadId, &saved->loss,
                        // On a device the sums wait there for one read per step.
                        /*sums_on_device=*/store_->device() != Device::kCpu));
  return StageBoundary{};
}

absl::StatusOr<StageBoundary> ModelStage::BackwardInput(const StepContext& ctx, const Batch& batch,
                                                        const StageBoundary& grad_output,
                                                        StageSaved* saved,
                                                        double grad_scale) const {
  if (forward_only_) {
    return absl::FailedPreconditionError(
        "this model stage runs forward only (SetForwardOnly): it kept nothing for backward");
  }
  const int n_enc = encoder_layers();
  const int total = n_enc + spec_.decoder_layers();
  Tensor dx = grad_output.hidden;
  Tensor dmemory = grad_output.memory;
  if (has_head_) {
    PT_ASSIGN_OR_RETURN(saved->d_logits, ops::CrossEntropyBackward(saved->logits, saved->labels,
                                                                   spec_.label_smoothing(), kPadId,
                                                                   saved->loss, grad_scale));
    saved->logits = Tensor();  // the largest activation; free it early
    PT_ASSIGN_OR_RETURN(Tensor d_rows,
                        ops::LinearBackwardInput(saved->d_logits, store_->param(output_)));
    if (spec_.decoder_layers() > 0) {
      dx = d_rows.Reshape({batch.tgt_in.dim(0), batch.tgt_in.dim(1), spec_.d_model()});
    } else {
      dmemory = d_rows.Reshape({batch.src_ids.dim(0), batch.src_ids.dim(1), spec_.d_model()});
    }
  }
  for (int g = last_ - 1; g >= first_; --g) {
    if (g == total - 1 && g >= n_enc && dec_final_gamma_ >= 0) {
      saved->d_decoder_top = dx;
      PT_ASSIGN_OR_RETURN(
          dx, ops::LayerNormBackwardInput(saved->decoder_top, store_->param(dec_final_gamma_),
                                          saved->decoder_final_ln, dx));
    }
    if (g == n_enc - 1) {
      // Entering the encoder from above: its output's gradient is what the
      // decoder layers (or the head) sent back as the memory gradient.
      dx = dmemory;
      dmemory = Tensor();
      if (enc_final_gamma_ >= 0) {
        saved->d_encoder_top = dx;
        PT_ASSIGN_OR_RETURN(
            dx, ops::LayerNormBackwardInput(saved->encoder_top, store_->param(enc_final_gamma_),
                                            saved->encoder_final_ln, dx));
      }
    }
    const int i = g - first_;
    LayerSaved* ls = &saved->layers[i];
    if (!recompute_.empty() && recompute_[i]) {
      // Rebuild the activations from the kept input; the output is not needed.
      PT_RETURN_IF_ERROR(
          LayerForward(ctx, batch, g, saved->layer_inputs[i], saved->memory, ls).status());
      saved->layer_inputs[i] = Tensor();
    }
    PT_ASSIGN_OR_RETURN(dx,
                        layers_[i]->BackwardInput(ctx, ls, dx, g >= n_enc ? &dmemory : nullptr));
    if (g == n_enc) {
      saved->d_tgt_embedded = dx;
      dx = Tensor();
    }
    if (g == 0 && n_enc > 0) {
      saved->d_src_embedded = dx;
      dx = Tensor();
    }
  }
  return StageBoundary{dx, dmemory};
}

absl::Status ModelStage::BackwardWeight(const StepContext& ctx, const Batch& batch,
                                        StageSaved* saved, const FinalGradients& on_final) const {
  const std::vector<ParameterInfo>& infos = store_->infos();
  auto span_of = [&](ParamId first, ParamId last) {
    const ParameterInfo& end = infos[last - 1];
    return FlatSegment{infos[first].offset,
                       end.offset + NumElements(end.shape) - infos[first].offset};
  };
  for (size_t i = 0; i < layers_.size(); ++i) {
    PT_RETURN_IF_ERROR(layers_[i]->BackwardWeight(&saved->layers[i]));
    const auto [first, last] = layer_params_[i];
    if (on_final && last > first) PT_RETURN_IF_ERROR(on_final(span_of(first, last)));
  }
  if (saved->d_encoder_top.defined()) {
    Tensor dg = store_->grad(enc_final_gamma_), db = store_->grad(enc_final_beta_);
    PT_RETURN_IF_ERROR(ops::LayerNormBackwardWeight(saved->encoder_top, saved->encoder_final_ln,
                                                    saved->d_encoder_top, dg, db));
  }
  if (saved->d_decoder_top.defined()) {
    Tensor dg = store_->grad(dec_final_gamma_), db = store_->grad(dec_final_beta_);
    PT_RETURN_IF_ERROR(ops::LayerNormBackwardWeight(saved->decoder_top, saved->decoder_final_ln,
                                                    saved->d_decoder_top, dg, db));
  }
  if (has_head_) {
    Tensor dout = output_ == embedding_ ? embedding_partials_[kOutputUse] : store_->grad(output_);
    PT_RETURN_IF_ERROR(ops::LinearBackwardWeight(saved->hidden, saved->d_logits, dout, nullptr));
  }
  const double p = ctx.training ? spec_.residual_dropout() : 0.0;
  auto embed_weight = [&](const Tensor& ids, const Tensor& dy, int site, EmbeddingUse use) {
    auto dx = ops::DropoutBackward(dy, p, ctx.Key(0, site));
    if (!dx.ok()) return dx.status();
    Tensor partial = embedding_partials_[use];
    return ops::EmbeddingBackwardWeight(ids, *dx, embed_scale_, partial);
  };
  if (saved->d_tgt_embedded.defined()) {
    PT_RETURN_IF_ERROR(
        embed_weight(batch.tgt_in, saved->d_tgt_embedded, kSiteDecoderEmbedding, kTargetUse));
  }
  if (saved->d_src_embedded.defined()) {
    PT_RETURN_IF_ERROR(
        embed_weight(batch.src_ids, saved->d_src_embedded, kSiteEmbedding, kSourceUse));
  }
  if (on_final) {
    // What no layer holds, in registration order: final LNs, untied output.
    for (ParamId id : {enc_final_gamma_, enc_final_beta_, dec_final_gamma_, dec_final_beta_,
                       output_ != embedding_ ? output_ : ParamId{-1}}) {
      if (id >= 0) PT_RETURN_IF_ERROR(on_final(span_of(id, id + 1)));
    }
  }
  *saved = StageSaved();
  return absl::OkStatus();
}

absl::Status ModelStage::SetEmbeddingGrad(const std::array<Tensor, 3>& partials) {
  if (embedding_ < 0) return absl::OkStatus();
  Tensor grad = store_->grad(embedding_);
  grad.Zero();
  for (const Tensor& partial : partials) {
    if (partial.defined()) PT_RETURN_IF_ERROR(ops::Axpy(1.0, partial, grad));
  }
  return absl::OkStatus();
}

void ModelStage::StartResidualStats() {
  residual_sums_ =
      Tensor::Zeros({static_cast<int64_t>(layers_.size())}, DType::kF64, store_->device());
  residual_counts_.assign(layers_.size(), 0.0);
}

absl::StatusOr<std::vector<std::pair<double, double>>> ModelStage::TakeResidualStats() {
  std::vector<std::pair<double, double>> stats;
  if (!residual_sums_.defined()) return stats;
  PT_ASSIGN_OR_RETURN(const Tensor host, CopyToDevice(residual_sums_, Device::kCpu));
  for (size_t i = 0; i < layers_.size(); ++i) stats.push_back({host.At(i), residual_counts_[i]});
  residual_sums_ = Tensor();
  residual_counts_.clear();
  return stats;
}

std::vector<FlatSegment> ModelStage::ParameterSegments(bool skip_embedding) const {
  std::vector<FlatSegment> segments;
  for (ParamId id = 0; id < static_cast<ParamId>(store_->infos().size()); ++id) {
    if (skip_embedding && id == embedding_) continue;
    const ParameterInfo& info = store_->infos()[id];
    segments.push_back({info.offset, NumElements(info.shape)});
  }
  return segments;
}

absl::StatusOr<std::vector<double>> ModelStage::GradSquares(bool skip_embedding) const {
  return SegmentSumsOfSquares(store_->flat_grads(), ParameterSegments(skip_embedding));
}

absl::StatusOr<Tensor> ModelStage::GradSquaresOnDevice(bool skip_embedding) const {
  return SegmentSumsOfSquaresOnDevice(store_->flat_grads(), ParameterSegments(skip_embedding));
}

}  // namespace pipetrain
